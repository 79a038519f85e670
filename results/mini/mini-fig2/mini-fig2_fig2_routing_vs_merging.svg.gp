cd "results/mini/mini-fig2"
set terminal svg size 1000,600
set output 'mini-fig2_fig2_routing_vs_merging.svg.tmp'
set encoding utf8
set key outside right top
set grid ytics
set title "Mini Figure 2: routing vs static merging (mini-nano)"
set style data histograms
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set ylabel 'Score'
set xtics rotate by -30
set key autotitle columnhead
plot for [i=2:6] 'mini-fig2_fig2_routing_vs_merging.dat' using i:xtic(1)
set output
