cd "results/mini/mini-table1"
set terminal svg size 1000,600
set output 'mini-table1_averages.svg.tmp'
set encoding utf8
set key outside right top
set grid ytics
set title "Mini Table 1: compression position per expert (mini-nano)"
set style data histograms
set style fill solid 0.8 border -1
set ylabel 'Average score'
set xtics rotate by -30
unset key
plot 'mini-table1_averages.dat' using 2:xtic(1)
set output
