cd "results/mini-gpu/mini-fig3"
set terminal pngcairo size 1300,650
set output 'mini-fig3_fig3_performance_vs_storage.png.tmp'
set encoding utf8
set key outside right top box opaque
set grid
set title "Mini Figure 3: performance vs storage (mini-nano)\nerror bars: ±1 standard error"
set xlabel 'Storage (MB; points of equal storage are spread sideways)'
set ylabel 'Average score'
set offsets graph 0.05, graph 0.05, graph 0.1, graph 0.1
plot 'mini-fig3_fig3_performance_vs_storage.dat' index 0 using 4:2:3 with yerrorbars pt 7 ps 1.6 lw 1.5 lc rgb '#1f77b4' title "Chat", \
     'mini-fig3_fig3_performance_vs_storage.dat' index 1 using 4:2:3 with yerrorbars pt 5 ps 1.6 lw 1.5 lc rgb '#ff7f0e' title "Math", \
     'mini-fig3_fig3_performance_vs_storage.dat' index 2 using 4:2:3 with yerrorbars pt 9 ps 1.6 lw 1.5 lc rgb '#2ca02c' title "Code", \
     'mini-fig3_fig3_performance_vs_storage.dat' index 3 using 4:2:3 with yerrorbars pt 11 ps 1.6 lw 1.5 lc rgb '#d62728' title "Routing", \
     'mini-fig3_fig3_performance_vs_storage.dat' index 4 using 4:2:3 with yerrorbars pt 13 ps 1.6 lw 1.5 lc rgb '#9467bd' title "Task Arithmetic", \
     'mini-fig3_fig3_performance_vs_storage.dat' index 5 using 4:2:3 with yerrorbars pt 15 ps 1.6 lw 1.5 lc rgb '#8c564b' title "TIES-Merging", \
     'mini-fig3_fig3_performance_vs_storage.dat' index 6 using 4:2:3 with yerrorbars pt 7 ps 1.6 lw 1.5 lc rgb '#e377c2' title "DARE", \
     'mini-fig3_fig3_performance_vs_storage.dat' index 7 using 4:2:3 with yerrorbars pt 5 ps 1.6 lw 1.5 lc rgb '#7f7f7f' title "1bit-Merging", \
     'mini-fig3_fig3_performance_vs_storage.dat' index 8 using 4:2:3 with yerrorbars pt 9 ps 1.6 lw 1.5 lc rgb '#bcbd22' title "1bit-Merging (Chat all-Linear)"
set output
