// Times "Denoise with DeepCAD model" on a movie file with the built-in model (the speed part of
// test-fiji.sh). Argument: "movie|output". Opening the movie is not timed (the command's input is an
// open image); the command's run is: loading the model, denoising, writing the output file. It runs
// twice: the first run shares the two cores with the JVM's own start-up work (class loading, JIT
// compilers), the second is what a user with Fiji already open gets.
args = split(getArgument(), "|");
open(args[0]);
rename("speed-input");
for (i = 1; i <= 2; i++) {
    start = getTime();
    run("Denoise with DeepCAD model", "input=speed-input model=[Built-in general model] device=cpu output_type=Automatic output_file=[" + args[1] + "] replace_existing=true");
    seconds = (getTime() - start) / 1000;
    if (i == 1) print("FIJI-DENOISE-FIRST-SECONDS " + seconds);
    else print("FIJI-DENOISE-SECONDS " + seconds);
    close("speed-input-denoised");
}
check("the timed denoise wrote its output file", File.exists(args[1]), "no " + args[1]);
close("*");
done("speed");
