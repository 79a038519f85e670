cd "results/mini-gpu/mini-fig3"
set terminal pngcairo size 1300,650
set output 'mini-fig3_fig3_percent_of_routing.png.tmp'
set encoding utf8
set key outside right top box opaque
set grid
set title "Mini Figure 3: performance vs storage (mini-nano): the paper's terms\nerror bars: 95% bootstrap interval of the ratio (±1 se without item scores)"
set xlabel "% of Routing's storage (points of equal storage are spread sideways)"
set ylabel "% of Routing's performance (average)"
set offsets graph 0.05, graph 0.05, graph 0.1, graph 0.1
set arrow from graph 0, first 100 to graph 1, first 100 nohead dt 2 lc rgb '#888888'
plot 'mini-fig3_fig3_percent_of_routing.dat' index 0 using 5:2:3:4 with yerrorbars pt 7 ps 1.6 lw 1.5 lc rgb '#1f77b4' title "Chat (measured)", \
     'mini-fig3_fig3_percent_of_routing.dat' index 1 using 5:2:3:4 with yerrorbars pt 5 ps 1.6 lw 1.5 lc rgb '#ff7f0e' title "Math (measured)", \
     'mini-fig3_fig3_percent_of_routing.dat' index 2 using 5:2:3:4 with yerrorbars pt 9 ps 1.6 lw 1.5 lc rgb '#2ca02c' title "Code (measured)", \
     'mini-fig3_fig3_percent_of_routing.dat' index 3 using 5:2:3:4 with yerrorbars pt 11 ps 1.6 lw 1.5 lc rgb '#d62728' title "Routing (measured)", \
     'mini-fig3_fig3_percent_of_routing.dat' index 4 using 5:2:3:4 with yerrorbars pt 13 ps 1.6 lw 1.5 lc rgb '#9467bd' title "Task Arithmetic (measured)", \
     'mini-fig3_fig3_percent_of_routing.dat' index 5 using 5:2:3:4 with yerrorbars pt 15 ps 1.6 lw 1.5 lc rgb '#8c564b' title "TIES-Merging (measured)", \
     'mini-fig3_fig3_percent_of_routing.dat' index 6 using 5:2:3:4 with yerrorbars pt 7 ps 1.6 lw 1.5 lc rgb '#e377c2' title "DARE (measured)", \
     'mini-fig3_fig3_percent_of_routing.dat' index 7 using 5:2:3:4 with yerrorbars pt 5 ps 1.6 lw 1.5 lc rgb '#7f7f7f' title "1bit-Merging (measured)", \
     'mini-fig3_fig3_percent_of_routing.dat' index 8 using 5:2:3:4 with yerrorbars pt 9 ps 1.6 lw 1.5 lc rgb '#bcbd22' title "1bit-Merging (Chat all-Linear) (measured)", \
     'mini-fig3_fig3_percent_of_routing.dat' index 9 using 1:2 with points pt 6 ps 2.2 lw 2 lc rgb 'black' title "paper: 1bit-Merging 94.53% at 66.25%", \
     'mini-fig3_fig3_percent_of_routing.dat' index 10 using 1:2 with points pt 4 ps 2.2 lw 2 lc rgb 'black' title "paper: 1bit-Merging (Chat all-Linear) 94.53% at 55.02%"
set output
