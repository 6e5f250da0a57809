/* http_reply: error bodies, so every error answer has the same shape. */
#include "http.h"

void payq_http_reply_error(struct payq_http_reply *rep, int status, const char *error,
                           const char *detail)
{
    rep->status = status;
    payq_buf_reset(&rep->body);
    payq_buf_puts(&rep->body, "{\"error\":");
    payq_buf_json_str(&rep->body, error);
    if (detail) {
        payq_buf_puts(&rep->body, ",\"detail\":");
        payq_buf_json_str(&rep->body, detail);
    }
    payq_buf_putc(&rep->body, '}');
}
