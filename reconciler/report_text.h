/* report_text: the human-readable form of the report (see report.h), for a
 * terminal or a mail to finance. It may name accounts and ids: the report
 * is for finance, unlike the logs. */
#ifndef PAYQ_RECON_REPORT_TEXT_H
#define PAYQ_RECON_REPORT_TEXT_H

#include <stdio.h>

#include "outcome.h"

void payq_report_text(const struct payq_recon_outcome *run, FILE *f);

#endif
