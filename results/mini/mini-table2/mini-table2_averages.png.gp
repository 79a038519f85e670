cd "results/mini/mini-table2"
set terminal pngcairo size 1000,600
set output 'mini-table2_averages.png.tmp'
set encoding utf8
set key outside right top
set grid ytics
set title "Mini Table 2: main comparison (mini-nano)"
set style data histograms
set style fill solid 0.8 border -1
set ylabel 'Average score'
set xtics rotate by -30
unset key
plot 'mini-table2_averages.dat' using 2:xtic(1)
set output
