// Shared by every test macro (test-fiji.sh puts it in front of each). A check prints one line the
// script counts: "CHECK-OK <name>" or "CHECK-FAIL <name>: <detail>". A macro that stops early never
// prints "MACRO-DONE", which the script reports as a failure.
var failures = 0;

function check(name, ok, detail) {
    if (ok) print("CHECK-OK " + name);
    else {
        print("CHECK-FAIL " + name + ": " + detail);
        failures++;
    }
}

function done(name) {
    if (failures == 0) print("MACRO-DONE " + name);
    else print("MACRO-FAILED " + name + " (" + failures + " failed checks)");
}

// Largest |a - b| over all pixels of two open images of equal size (titles); -1 if sizes differ.
function maxAbsDiff(a, b) {
    selectImage(a);
    getDimensions(wa, ha, ca, za, ta);
    selectImage(b);
    getDimensions(wb, hb, cb, zb, tb);
    if (wa != wb || ha != hb || ca * za * ta != cb * zb * tb) return -1;
    imageCalculator("Difference create 32-bit stack", a, b);
    diff = getImageID();
    if (nSlices > 1) {
        run("Z Project...", "projection=[Max Intensity]");
        projection = getImageID();
        getStatistics(area, mean, min, max);
        selectImage(projection);
        close();
    } else getStatistics(area, mean, min, max);
    selectImage(diff);
    close();
    return max;
}

function near(a, b) {
    return (abs(a - b) < 1e-6);
}
