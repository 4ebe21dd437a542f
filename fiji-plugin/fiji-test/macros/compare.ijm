// Pixel comparison of TIFF pairs. Argument: "a1|b1;a2|b2;..." (absolute paths). One check per pair.
// A pair written "!a|b" must differ: the negative control that shows the comparison can fail.
pairs = split(getArgument(), ";");
for (i = 0; i < pairs.length; i++) {
    differ = startsWith(pairs[i], "!");
    ab = split(replace(pairs[i], "^!", ""), "|");
    open(ab[0]);
    rename("compare-a");
    a = getTitle();
    bitsA = bitDepth();
    open(ab[1]);
    rename("compare-b");
    b = getTitle();
    bitsB = bitDepth();
    d = maxAbsDiff(a, b);
    if (differ) check("different pixels (control): " + ab[0] + " != " + ab[1], (d != 0), "identical");
    else check("same pixels: " + ab[0] + " = " + ab[1], (d == 0 && bitsA == bitsB), "max |difference| " + d + ", bit depths " + bitsA + "/" + bitsB);
    close("*");
}
done("compare");
