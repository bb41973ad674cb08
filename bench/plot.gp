# gnuplot -e "datafile='out/plot.dat'; outfile='out/bench.png'; nservers=5; n4k=3; n1m=2" plot.gp
# Two panels: 4 KiB jobs in IOPS, 1 MiB jobs in MB/s; one bar per server.
# n4k and n1m (how many jobs of each kind ran) drop an empty panel.
if (!exists("datafile")) datafile = 'bench/out/plot.dat'
if (!exists("outfile")) outfile = 'bench/out/bench.png'
set terminal pngcairo size 1400,560 font "sans,10"
set output outfile
if (!exists("nservers")) nservers = 5
if (!exists("n4k")) n4k = 1
if (!exists("n1m")) n1m = 1
ncol = nservers + 1
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key below horizontal autotitle columnhead
set yrange [0:*]
set xtics noenhanced
set key noenhanced
set multiplot layout 1,((n4k > 0) + (n1m > 0)) title "triplex (1 and 3 replicas) vs NBD peers (fio ioengine=nbd, Unix socket)"
if (n4k > 0) {
	set title "4 KiB random I/O"
	set ylabel "IOPS"
	plot for [c=2:ncol] datafile index 0 using c:xtic(1)
}
if (n1m > 0) {
	set title "1 MiB sequential I/O"
	set ylabel "MB/s"
	plot for [c=2:ncol] datafile index 1 using c:xtic(1)
}
unset multiplot
