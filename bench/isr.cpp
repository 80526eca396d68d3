// Instrument signal removal: CPU seconds to turn one raw 4096 x 4096 detector (LSSTCam-like: 8 x 2
// amplifiers of 512 x 2048 with 32 overscan columns each, 18-bit ADC) into the exposure that
// characterization consumes — overscan per row, gain, master bias, dark and flat, variance,
// saturation/defect masks (calib/isr.h) — and the same for reading the raw from its
// Rice-compressed FITS file and writing the result (what the pipeline's isr task does).
// Reference: the same ISR in numpy (Debian python3-numpy/astropy, vectorised, 1 thread: per-row
// 3σ-clipped overscan mean, gain, bias, dark × t, flat, variance, SAT) on the same raw and
// masters, timed with process_time in the same invocation.
// The raw frame is a simulated flat-field exposure (sim/raw.h) with the bench camera's true
// calibration as masters: ISR's cost does not depend on the scene.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "drp/bench/bench.h"
#include "drp/calib/isr.h"
#include "drp/io/fits.h"
#include "drp/io/raw_fits.h"
#include "drp/sim/raw.h"
#include "drp/sim/survey.h"

namespace drp::bench {
namespace {

const char* kNumpyIsr = R"PY(
import sys, time, statistics
import numpy as np
from astropy.io import fits
raw_path, bias_path, dark_path, flat_path, reps = sys.argv[1:6]
with fits.open(raw_path) as f:
    h = f["RAW"].header
    adu = f["RAW"].data.astype(np.float32)
    t = f[0].header["EXPTIME"]
def sec(s):
    x, y = s.strip("[]").split(",")
    x1, x2 = map(int, x.split(":")); y1, y2 = map(int, y.split(":"))
    return slice(y1 - 1, y2), slice(x1 - 1, x2)
amps = [(sec(h["AMP%02d_DATASEC" % k]), sec(h["AMP%02d_BIASSEC" % k]), sec(h["AMP%02d_DETSEC" % k]),
         h["AMP%02d_GAIN" % k], h["AMP%02d_RDNOISE" % k], h["AMP%02d_SATURATE" % k])
        for k in range(h.get("NAMPS", 0) or fits.getheader(raw_path, 0)["NAMPS"])]
def plane(p, name):
    with fits.open(p) as f:
        return f[name].data.astype(np.float32)
bias, dark, flat = (plane(p, "IMAGE") for p in (bias_path, dark_path, flat_path))
bvar, dvar, fvar = (plane(p, "VARIANCE") for p in (bias_path, dark_path, flat_path))
def isr():
    img = np.empty(bias.shape, np.float32); var = np.empty_like(img); sat = np.zeros(img.shape, bool)
    for d, o, det, g, rn, s in amps:
        os = adu[o]
        m = os.mean(axis=1, keepdims=True); sd = os.std(axis=1, keepdims=True)
        ok = np.abs(os - m) <= 3 * sd
        level = (os * ok).sum(axis=1, keepdims=True) / ok.sum(axis=1, keepdims=True)
        img[det] = (adu[d] - level) * g
        var[det] = rn * rn + g * g / 12.0
        sat[det] = adu[d] >= s
    img -= bias; img -= dark * t
    var += bvar + dvar * t * t + np.maximum(img, 0)
    img /= flat
    var = var / flat**2 + img**2 * fvar / flat**2
    return img, var, sat
times = []
for _ in range(int(reps)):
    c = time.process_time(); isr(); times.append(time.process_time() - c)
print(statistics.median(times), np.__version__)
)PY";

std::vector<Measurement> run(Context& ctx) {
    namespace fs = std::filesystem;
    sim::SurveyConfig cfg = sim::presetConfig(ctx.quick ? "tiny" : "bench");
    sim::RawConfig rawConfig;
    rawConfig.nAmpX = ctx.quick ? 4 : 8;  // LSSTCam: 8 x 2 amplifiers
    rawConfig.nAmpY = 2;
    sim::Camera camera(cfg.camera);
    const sim::SurveyPlan plan = sim::makePlan(cfg, 1);
    const sim::CalibrationTruth truth =
        sim::trueCalibration(camera, rawConfig, cfg.observing, 0, {"r"}, 1);
    sim::CalibExposureSpec spec{1, obs_type::kFlat, "r", plan.config.mjdStart, 30.0, 20000, false};
    RawExposure raw =
        sim::simulateCalibExposure(camera, spec, 0, cfg.observing, rawConfig, truth, 1);
    raw.obsType = obs_type::kScience;
    auto master = [&](const ImageF& image, double variance) {
        Exposure e(MaskedImage(image, truth.defectMask, ImageF(image.bbox(), float(variance))));
        return e;
    };
    const Exposure bias = master(truth.bias, 8.0), dark = master(truth.dark, 1e-4),
                   flat = master(truth.flats.at("r"), 1e-6);
    const calib::IsrConfig isrConfig;
    const int repeats = ctx.quick ? 1 : std::max(1, std::min(ctx.repeats, 5));
    Timing inMemory = timeIt(repeats, [&] {
        Exposure out = calib::runIsr(raw, {&bias, &dark, &flat}, isrConfig);
        doNotOptimize(out.image().data());
    });

    const std::string dir = ctx.workDir.empty() ? fs::temp_directory_path().string() : ctx.workDir;
    const std::string rawPath = dir + "/isr_raw.fits", outPath = dir + "/isr_out.fits";
    fits::writeRawExposure(rawPath, raw);
    const std::string biasPath = dir + "/isr_bias.fits", darkPath = dir + "/isr_dark.fits",
                      flatPath = dir + "/isr_flat.fits";
    fits::writeExposure(biasPath, bias);
    fits::writeExposure(darkPath, dark);
    fits::writeExposure(flatPath, flat);
    Timing withIo = timeIt(repeats, [&] {
        RawExposure r = fits::readRawExposure(rawPath);
        fits::writeExposure(outPath, calib::runIsr(r, {&bias, &dark, &flat}, isrConfig));
    });

    // Reference: numpy on the same files.
    std::optional<double> numpy;
    std::string numpyVersion;
    const char* py = std::getenv("DRP_PYTHON");
    const std::string interpreter = py && *py ? py : "/usr/bin/python3";
    const std::string script = dir + "/isr_numpy.py", result = dir + "/isr_numpy.txt";
    std::ofstream(script) << kNumpyIsr;
    const std::string cmd = interpreter + " " + script + " " + rawPath + " " + biasPath + " " +
                            darkPath + " " + flatPath + " " + std::to_string(repeats) + " > " +
                            result + " 2>&1";
    if (std::system(cmd.c_str()) == 0) {
        std::ifstream in(result);
        double t = 0;
        if (in >> t >> numpyVersion) numpy = t;
    } else if (ctx.log) {
        *ctx.log << "isr: numpy reference failed: " << cmd << "\n";
    }

    const std::string size = std::to_string(raw.detectorBox.width()) + "x" +
                             std::to_string(raw.detectorBox.height()) + " detector, " +
                             std::to_string(raw.amps.size()) + " amplifiers, 1 thread, median of " +
                             std::to_string(repeats);
    Measurement m;
    m.metric = "ISR of one detector (in memory)";
    m.unit = "CPU-s";
    m.value = inMemory.cpuMedian;
    m.higherIsBetter = false;
    if (numpy) {
        m.reference = numpy;
        m.referenceTool = "numpy " + numpyVersion + " (same steps, vectorised)";
    }
    m.note = size + "; wall " + std::to_string(inMemory.median) + " s";
    Measurement io;
    io.metric = "ISR task: read raw (Rice FITS) + ISR + write exposure";
    io.unit = "CPU-s";
    io.value = withIo.cpuMedian;
    io.higherIsBetter = false;
    io.note = size + "; includes fsync; wall " + std::to_string(withIo.median) + " s";
    return {m, io};
}

const RegisterBenchmark reg{
    {.name = "isr",
     .description = "instrument signal removal per 4k x 4k detector vs the same steps in numpy",
     .run = run}};

}  // namespace
}  // namespace drp::bench
