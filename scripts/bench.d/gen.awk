# scripts/bench.d/gen.awk: synthetic accounts and transfers for scripts/bench.
# mawk or gawk; about a second per million lines. Variables (-v):
#   mode      accounts | funding | transfers
#   pfx       id prefix of this run (accounts: PFX:a:I regular, PFX:r:J restricted,
#             PFX:f treasury, PFX:m merchant; missing accounts PFX:x:K)
#   A         regular accounts          R   restricted accounts
#   N         transfers to write        tid transfer id infix (default t: PFX:t:I)
#   skew      uniform | zipf | hot      seed  random seed
#   fund      funding of each restricted account, minor units (mode funding)
#   rk        if set, each line is "RK<TAB>JSON" (payq-rawpub input)
#   date      if set, business_date of every transfer (needed without the producer)
# Transfer mix: 0.5% name an account that does not exist (account_not_found),
# 3% debit a restricted account (debits_must_not_exceed_credits) whose small
# funding covers about a third of them (insufficient_funds for the rest), the
# others move money between regular accounts chosen by the skew: uniform;
# zipf (popularity of rank k ~ 1/k on both sides); hot (every credit goes to
# the merchant account PFX:m, debits uniform). Amounts: 1..99999 minor units.
function pick(    k) {
    if (skew == "zipf") {
        k = int(exp(rand() * LA)) - 1      # density ~ 1/x over [1, A+1): Zipf, s = 1
        if (k >= A) k = A - 1
        return k
    }
    return int(rand() * A)
}
function out(id, d, c, amt) {
    printf "%s{\"id\":\"%s\",\"debit_account\":\"%s\",\"credit_account\":\"%s\",\"amount\":\"%d\",\"currency\":\"EUR\"%s}\n", \
        pre, id, d, c, amt, tail
}
BEGIN {
    srand(seed + 0)
    A += 0; R += 0; N += 0
    LA = log(A + 1)
    if (tid == "") tid = "t"
    pre = (rk != "") ? rk "\t" : ""
    tail = (date != "") ? ",\"business_date\":\"" date "\"" : ""
    if (mode == "accounts") {
        printf "{\"id\":\"%s:f\",\"currency\":\"EUR\"}\n", pfx
        printf "{\"id\":\"%s:m\",\"currency\":\"EUR\"}\n", pfx
        for (i = 0; i < A; i++) printf "{\"id\":\"%s:a:%d\",\"currency\":\"EUR\"}\n", pfx, i
        for (j = 0; j < R; j++)
            printf "{\"id\":\"%s:r:%d\",\"currency\":\"EUR\",\"flags\":[\"debits_must_not_exceed_credits\"]}\n", pfx, j
        exit
    }
    if (mode == "funding") {
        for (j = 0; j < R; j++) out(pfx ":fund:" j, pfx ":f", pfx ":r:" j, fund)
        exit
    }
    for (i = 0; i < N; i++) {
        amt = int(rand() * 99999) + 1
        u = rand()
        if (u < 0.005) {                       # an account that does not exist
            x = pfx ":x:" int(rand() * 1000)
            if (u < 0.0025) { d = x; c = pfx ":a:" pick() }
            else { d = pfx ":a:" pick(); c = x }
        } else if (u < 0.035 && R > 0) {       # a restricted account pays
            d = pfx ":r:" int(rand() * R)
            c = (skew == "hot") ? pfx ":m" : pfx ":a:" pick()
        } else {
            if (skew == "hot") {
                d = pfx ":a:" int(rand() * A); c = pfx ":m"
            } else {
                di = pick(); ci = pick()
                while (ci == di) ci = pick()
                d = pfx ":a:" di; c = pfx ":a:" ci
            }
        }
        out(pfx ":" tid ":" i, d, c, amt)
    }
}
