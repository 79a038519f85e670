cd "results/ablation-bits"
set terminal pngcairo size 1800,600
set output 'ablation-bits_bits_vs_retained_gain.png.tmp'
set encoding utf8
set grid
set logscale x 2
set offsets graph 0.08, graph 0.08, graph 0.05, graph 0.05
set multiplot layout 1,3 title "Ablation: bits per parameter vs retained own-domain gain (mini-nano)\nerror bars: ±1 standard error (paired delta method); colour = scheme, marker = position"
set title "chat (own domain: MMLU+HellaSwag+TruthfulQA)"
set xlabel 'bits per parameter of the stored delta'
set ylabel 'retained own-domain gain'
unset key
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#888888'
set arrow 2 from graph 0, first 0 to graph 1, first 0 nohead dt 3 lc rgb '#888888'
plot 'ablation-bits_bits_vs_retained_gain.dat' index 0 using 4:2:3 with yerrorbars pt 7 ps 1.4 lw 1.5 lc rgb '#1f77b4' title "full expert (fp16)", \
     'ablation-bits_bits_vs_retained_gain.dat' index 1 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#ff7f0e' title "attention sign", \
     'ablation-bits_bits_vs_retained_gain.dat' index 2 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#2ca02c' title "attention ternary=0.1", \
     'ablation-bits_bits_vs_retained_gain.dat' index 3 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#d62728' title "attention ternary=0.3", \
     'ablation-bits_bits_vs_retained_gain.dat' index 4 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#ff7f0e' title "mlp sign", \
     'ablation-bits_bits_vs_retained_gain.dat' index 5 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#2ca02c' title "mlp ternary=0.1", \
     'ablation-bits_bits_vs_retained_gain.dat' index 6 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#d62728' title "mlp ternary=0.3", \
     'ablation-bits_bits_vs_retained_gain.dat' index 7 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#ff7f0e' title "linear sign", \
     'ablation-bits_bits_vs_retained_gain.dat' index 8 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#2ca02c' title "linear ternary=0.1", \
     'ablation-bits_bits_vs_retained_gain.dat' index 9 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#d62728' title "linear ternary=0.3", \
     'ablation-bits_bits_vs_retained_gain.dat' index 10 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#9467bd' title "attention bitdelta", \
     'ablation-bits_bits_vs_retained_gain.dat' index 11 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#9467bd' title "mlp bitdelta", \
     'ablation-bits_bits_vs_retained_gain.dat' index 12 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#9467bd' title "linear bitdelta"
set title "math (own domain: GSM8K+MATH)"
set xlabel 'bits per parameter of the stored delta'
set ylabel 'retained own-domain gain'
unset key
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#888888'
set arrow 2 from graph 0, first 0 to graph 1, first 0 nohead dt 3 lc rgb '#888888'
plot 'ablation-bits_bits_vs_retained_gain.dat' index 13 using 4:2:3 with yerrorbars pt 7 ps 1.4 lw 1.5 lc rgb '#1f77b4' title "full expert (fp16)", \
     'ablation-bits_bits_vs_retained_gain.dat' index 14 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#ff7f0e' title "attention sign", \
     'ablation-bits_bits_vs_retained_gain.dat' index 15 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#2ca02c' title "attention ternary=0.1", \
     'ablation-bits_bits_vs_retained_gain.dat' index 16 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#d62728' title "attention ternary=0.3", \
     'ablation-bits_bits_vs_retained_gain.dat' index 17 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#ff7f0e' title "mlp sign", \
     'ablation-bits_bits_vs_retained_gain.dat' index 18 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#2ca02c' title "mlp ternary=0.1", \
     'ablation-bits_bits_vs_retained_gain.dat' index 19 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#d62728' title "mlp ternary=0.3", \
     'ablation-bits_bits_vs_retained_gain.dat' index 20 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#ff7f0e' title "linear sign", \
     'ablation-bits_bits_vs_retained_gain.dat' index 21 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#2ca02c' title "linear ternary=0.1", \
     'ablation-bits_bits_vs_retained_gain.dat' index 22 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#d62728' title "linear ternary=0.3", \
     'ablation-bits_bits_vs_retained_gain.dat' index 23 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#9467bd' title "attention bitdelta", \
     'ablation-bits_bits_vs_retained_gain.dat' index 24 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#9467bd' title "mlp bitdelta", \
     'ablation-bits_bits_vs_retained_gain.dat' index 25 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#9467bd' title "linear bitdelta"
set title "code (own domain: MBPP+HumanEval)"
set xlabel 'bits per parameter of the stored delta'
set ylabel 'retained own-domain gain'
set key outside right top box opaque
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#888888'
set arrow 2 from graph 0, first 0 to graph 1, first 0 nohead dt 3 lc rgb '#888888'
plot 'ablation-bits_bits_vs_retained_gain.dat' index 26 using 4:2:3 with yerrorbars pt 7 ps 1.4 lw 1.5 lc rgb '#1f77b4' title "full expert (fp16)", \
     'ablation-bits_bits_vs_retained_gain.dat' index 27 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#ff7f0e' title "attention sign", \
     'ablation-bits_bits_vs_retained_gain.dat' index 28 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#2ca02c' title "attention ternary=0.1", \
     'ablation-bits_bits_vs_retained_gain.dat' index 29 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#d62728' title "attention ternary=0.3", \
     'ablation-bits_bits_vs_retained_gain.dat' index 30 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#ff7f0e' title "mlp sign", \
     'ablation-bits_bits_vs_retained_gain.dat' index 31 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#2ca02c' title "mlp ternary=0.1", \
     'ablation-bits_bits_vs_retained_gain.dat' index 32 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#d62728' title "mlp ternary=0.3", \
     'ablation-bits_bits_vs_retained_gain.dat' index 33 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#ff7f0e' title "linear sign", \
     'ablation-bits_bits_vs_retained_gain.dat' index 34 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#2ca02c' title "linear ternary=0.1", \
     'ablation-bits_bits_vs_retained_gain.dat' index 35 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#d62728' title "linear ternary=0.3", \
     'ablation-bits_bits_vs_retained_gain.dat' index 36 using 4:2:3 with yerrorbars pt 5 ps 1.4 lw 1.5 lc rgb '#9467bd' title "attention bitdelta", \
     'ablation-bits_bits_vs_retained_gain.dat' index 37 using 4:2:3 with yerrorbars pt 9 ps 1.4 lw 1.5 lc rgb '#9467bd' title "mlp bitdelta", \
     'ablation-bits_bits_vs_retained_gain.dat' index 38 using 4:2:3 with yerrorbars pt 11 ps 1.4 lw 1.5 lc rgb '#9467bd' title "linear bitdelta"
unset multiplot
set output
