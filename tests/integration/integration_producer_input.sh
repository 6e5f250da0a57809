#!/usr/bin/env bash
# shellcheck disable=SC2002 # cat | producer: the input must be a pipe, not a seekable file
# integration_producer_input: what `payq-producer publish` does with inputs
# that are not plain non-empty files (issue 17 item 7), against the real
# broker in a private vhost. An empty file and empty standard input are
# refused (exit 1, "FILE: no transfers", nothing reaches the broker) unless
# --allow-empty, which publishes the empty batch's manifest alone. A FIFO,
# a shell's <(...) and /dev/stdin on a pipe, which cannot be rewound, are
# read once into a spool in TMPDIR and publish every transfer (exact queue
# depth: ceil(N / pack_max) packs; the manifest goes to the audit stream
# only) with the spool file
# gone afterwards; input larger than producer.spool_max_mib is refused
# and publishes nothing.
set -uo pipefail
export LC_ALL=C
TEST_NAME=integration_producer_input
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
. "$here/lib/producer_common.sh"

P=pin$RUN_ID
V=payq-test-$P
pv_create "$V" || { fail "could not create private vhost $V"; finish; }
export PAYQ_AMQP_URL
PAYQ_AMQP_URL=$(pv_url "$V")
spool=$TMP/spool
mkdir -p "$spool"
export TMPDIR=$spool
# Empties the transfers queue between cases (nothing here needs booking).
purge() { pv_api DELETE "queues/$V/payq.transfers/contents" >/dev/null; }

# ---- empty inputs are refused
: >"$TMP/empty.jsonl"
"$PRODUCER" publish "$TMP/empty.jsonl" >"$TMP/out" 2>"$TMP/err"
check "empty file: exit 1" 1 $?
check "empty file: FILE: no transfers" 1 "$(grep -c "^payq-producer: $TMP/empty.jsonl: no transfers" "$TMP/err")"
"$PRODUCER" publish - </dev/null >"$TMP/out" 2>"$TMP/err"
check "empty stdin: exit 1" 1 $?
check "empty stdin: no transfers" 1 "$(grep -c '^payq-producer: standard input: no transfers' "$TMP/err")"
printf '' | "$PRODUCER" open-accounts - --json >"$TMP/out" 2>"$TMP/err"
check "empty accounts on a pipe: exit 1" 1 $?
check "empty accounts --json: error no accounts" '"no accounts"' "$(jq '.error' "$TMP/out")"
check "empty inputs: nothing queued" 0 "$(pv_depth "$V" payq.transfers)"
check "empty inputs: nothing in the audit stream" 0 "$(pv_stream "$V" | wc -l)"

# ---- --allow-empty: the empty batch's manifest, count 0
"$PRODUCER" publish "$TMP/empty.jsonl" --allow-empty --batch-id "$P-empty" --json >"$TMP/out" 2>"$TMP/err"
check "--allow-empty: exit 0" 0 $?
check "--allow-empty: manifest confirmed, count 0" "true 0" "$(jq -r '"\(.manifest_confirmed) \(.count)"' "$TMP/out")"
check "--allow-empty: one batch message in the stream" 1 "$(pv_stream "$V" 1 | awk -F'\t' -v id="$P-empty" '$1 == "batch" && $2 == id' | wc -l)"
purge

# ---- inputs that cannot seek: spooled, read twice, published whole
N=2500
gen_transfers_file "$P-f" $N >"$TMP/good.jsonl"
mkfifo "$TMP/fifo"
cat "$TMP/good.jsonl" >"$TMP/fifo" &
"$PRODUCER" publish "$TMP/fifo" --json >"$TMP/out" 2>"$TMP/err"
rc=$?
wait
check "FIFO: exit 0" 0 $rc
check "FIFO: no rewind error" 0 "$(grep -c 'could not rewind' "$TMP/err")"
check "FIFO: every transfer confirmed" "$N" "$(jq '.confirmed' "$TMP/out")"
check "FIFO: every pack queued" "$(ceil_div $N 100)" "$(pv_depth "$V" payq.transfers)"
purge

gen_transfers_file "$P-p" $N >"$TMP/good2.jsonl"
"$PRODUCER" publish <(cat "$TMP/good2.jsonl") --json >"$TMP/out" 2>"$TMP/err"
check "<(...): exit 0" 0 $?
check "<(...): every transfer confirmed" "$N" "$(jq '.confirmed' "$TMP/out")"
purge

gen_transfers_file "$P-s" $N >"$TMP/good3.jsonl"
cat "$TMP/good3.jsonl" | "$PRODUCER" publish /dev/stdin --json >"$TMP/out" 2>"$TMP/err"
check "/dev/stdin on a pipe: exit 0" 0 $?
check "/dev/stdin on a pipe: every transfer confirmed" "$N" "$(jq '.confirmed' "$TMP/out")"
check "/dev/stdin: every pack queued" "$(ceil_div $N 100)" "$(pv_depth "$V" payq.transfers)"
check "spool files are gone afterwards" 0 "$(find "$spool" -type f | wc -l)"
purge

# ---- the spool is bounded: 1 MiB limit, about 1.6 MiB of input
cat >"$TMP/small.yaml" <<YAML
producer:
  spool_max_mib: 1
YAML
gen_transfers_file "$P-b" 12000 >"$TMP/big.jsonl"
cat "$TMP/big.jsonl" | "$PRODUCER" publish - --config "$TMP/small.yaml" >"$TMP/out" 2>"$TMP/err"
check "over spool_max_mib: exit 1" 1 $?
check "over spool_max_mib: says so" 1 "$(grep -c 'larger than producer.spool_max_mib' "$TMP/err")"
check "over spool_max_mib: nothing queued" 0 "$(pv_depth "$V" payq.transfers)"
finish
