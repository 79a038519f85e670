cd "results/mini-gpu/mini-fig2"
set terminal svg size 1300,650
set output 'mini-fig2_fig2_routing_vs_merging.svg.tmp'
set encoding utf8
set key outside right top box opaque
set grid
set title "Mini Figure 2: routing vs static merging (mini-nano)\nerror bars: ±1 standard error"
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set ylabel 'Score'
set xtics rotate by -30
set yrange [0:*]
plot 'mini-fig2_fig2_routing_vs_merging.dat' using 2:3:xtic(1) lc rgb '#1f77b4' title "Routing", \
     'mini-fig2_fig2_routing_vs_merging.dat' using 4:5 lc rgb '#ff7f0e' title "Task Arithmetic", \
     'mini-fig2_fig2_routing_vs_merging.dat' using 6:7 lc rgb '#2ca02c' title "TIES-Merging", \
     'mini-fig2_fig2_routing_vs_merging.dat' using 8:9 lc rgb '#d62728' title "DARE", \
     'mini-fig2_fig2_routing_vs_merging.dat' using 10:11 lc rgb '#9467bd' title "1bit-Merging"
set output
