# scripts/bench.d/chart.gp: the chart of scripts/bench (gnuplot 5.4, terminal png:
# gnuplot-nox has no cairo). Set with -e: outfile, dir (data files), skews
# (words), textbooks (one e2e rate per skew, 0 if unknown), ceiling (0 if
# unknown), ceiling1 (the ceiling with one message per transfer; optional), runs (words: <skew>-<W>w and <skew>-<W>w-half), maxw, subtitle.
# Data: dir/tput-<skew>.dat "workers e2e_tps"; dir/cdf-<run>.dat "ms fraction".
set terminal png size 1500,600 font ",10" noenhanced
# (the gd png terminal draws no dashes: markers tell the lines apart)
set output outfile
set multiplot layout 1,2 title "payq benchmark: ".subtitle

# ---- throughput against workers
set title "End-to-end throughput (publish start to last commit)"
set xlabel "workers"
set ylabel "transfers/s (log scale)"
if (!exists("ceiling1")) ceiling1 = 0
set xrange [0.5:maxw + 0.5]
# Log scale: the textbook worker, payq and the packed broker ceiling are
# three orders of magnitude apart.
set logscale y
top = (ceiling > 0 ? ceiling : 100000) * 3
set yrange [50:top]
set xtics 1
set key below box
set grid
set samples 9
cmd = ""
do for [i = 1:words(skews)] {
    s = word(skews, i)
    cmd = cmd . sprintf("'%s/tput-%s.dat' using 1:2 with linespoints lw 2 pt 7 ps 1.5 lc %d title 'payq, %s', ", dir, s, i, s)
}
if (ceiling > 0) {
    cmd = cmd . sprintf("%f with linespoints lw 2 pt 5 ps 1.2 lc rgb 'black' title sprintf('broker ceiling (ackdrain) %%.0f/s', %f), ", ceiling, ceiling)
}
if (ceiling1 > 0) {
    cmd = cmd . sprintf("%f with linespoints lw 2 pt 4 ps 1.2 lc rgb 'gray40' title sprintf('broker ceiling, one message per transfer %%.0f/s', %f), ", ceiling1, ceiling1)
}
do for [i = 1:words(skews)] {
    t = real(word(textbooks, i))
    if (t > 0) {
        cmd = cmd . sprintf("%f with linespoints lw 1 pt 4 ps 1.2 lc %d title sprintf('textbook (1 msg per txn), %s: %%.0f/s', %f), ", t, i, word(skews, i), t)
    }
}
if (strlen(cmd) > 2) {
    eval "plot " . cmd[1:strlen(cmd) - 2]
} else {
    set label 1 "no throughput data" at graph 0.5, 0.5 center
    set yrange [0:1]
    plot 0.5 lc rgb "white" notitle
    unset label 1
}

# ---- latency distribution
unset logscale y
set title "Intake-to-commit latency, CDF (lines: full load; lines with circles: about half load)"
set samples 100
set logscale x
set xlabel "committed_at - published_at, ms (log scale)"
set ylabel "% of transfers"
set xrange [*:*]
set yrange [0:100]
set xtics auto
unset offsets
set key inside top left box opaque
cmd = ""
base = ""
ci = 0
do for [i = 1:words(runs)] {
    r = word(runs, i)
    half = strstrt(r, "-half") > 0
    b = half ? r[1:strlen(r) - 5] : r
    if (b ne base) { ci = ci + 1; base = b }
    cmd = cmd . sprintf("'%s/cdf-%s.dat' using 1:($2 * 100) with %s lw 2 lc %d title '%s', ", dir, r, half ? "linespoints pt 6 ps 1 pi 60" : "lines", ci, half ? b . ", half load" : r . ", full load")
}
if (strlen(cmd) > 2) {
    eval "plot " . cmd[1:strlen(cmd) - 2]
} else {
    unset logscale x
    set label 1 "no latency data" at graph 0.5, 0.5 center
    plot [0:1] 50 lc rgb "white" notitle
}
unset multiplot
