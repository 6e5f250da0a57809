/* idset: remembers which ids a batch file has used, in 16 bytes per line
 * whatever the line's length: a 32-bit hash of the id, the line number and
 * the byte offset of the line that first used it. Hashes collide, so a
 * match is only a candidate: the caller re-reads that line
 * (payq_lines_read_at) and compares the real ids. Duplicate detection stays
 * exact while memory grows with the number of lines, not the file's size
 * (a false candidate costs one re-read: about n / 2^32 per line). */
#ifndef PAYQ_IDSET_H
#define PAYQ_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct payq_idset_slot {
    uint64_t offset1; /* byte offset + 1; 0 marks an empty slot */
    uint32_t hash;
    uint32_t line;
};

struct payq_idset {
    struct payq_idset_slot *slots; /* owned */
    size_t cap;                    /* power of two */
    size_t n;
};

/* Hash of an id as the set uses it. */
uint32_t payq_idset_hash(const char *id);

/* Adds an entry. Aborts on out-of-memory, like payq_buf. */
void payq_idset_add(struct payq_idset *s, uint32_t hash, uint32_t line, uint64_t offset);

/* Walks the entries whose hash equals hash: start with *cursor = 0 and
 * call until it returns false; each true return sets *line and *offset. */
bool payq_idset_next(const struct payq_idset *s, uint32_t hash, size_t *cursor, uint32_t *line,
                     uint64_t *offset);

void payq_idset_free(struct payq_idset *s); /* safe on a zeroed set */

#endif
