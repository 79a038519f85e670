cd "results/mini/mini-fig3"
set terminal pngcairo size 1000,600
set output 'mini-fig3_fig3_performance_vs_storage.png.tmp'
set encoding utf8
set key outside right top
set grid ytics
set title "Mini Figure 3: performance vs storage (mini-nano)"
set xlabel 'Storage (MB)'
set ylabel 'Average score'
set offsets graph 0.08, graph 0.2, graph 0.1, graph 0.1
unset key
plot 'mini-fig3_fig3_performance_vs_storage.dat' using 2:3 with points pt 7 ps 1.5 lc rgb '#1f77b4', '' using 2:3:1 with labels offset 0,1 font ',9'
set output
