cd "results/mini-gpu/mini-regime"
set terminal svg size 1300,650
set output 'mini-regime_averages.svg.tmp'
set encoding utf8
set key outside right top box opaque
set grid
set title "Mini regime: the base, the experts and the static merges (mini-nano)\nerror bars: ±1 standard error"
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set ylabel 'Average score'
set xtics rotate by -30
set yrange [0:*]
unset key
plot 'mini-regime_averages.dat' using 2:3:xtic(1) lc rgb '#1f77b4'
set output
