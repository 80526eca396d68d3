#include "drp/calib/isr.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "drp/core/error.h"

namespace drp::calib {

void IsrConfig::validate() const {
    if (!(overscanClipSigma > 1)) throw configError("isr: overscanClipSigma must be > 1");
    if (overscanSmoothRows < 0) throw configError("isr: overscanSmoothRows must be >= 0");
    if (suspectGrow < 0) throw configError("isr: suspectGrow must be >= 0");
}

namespace {

// σ-clipped mean of a few values: centre on the median, clip at k σ (σ from the sample),
// iterate until nothing changes (at most 5 times).
double clippedMean(std::vector<double>& v, double k) {
    if (v.empty()) return 0.0;
    std::vector<double> s = v;
    std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(s.size() / 2), s.end());
    double centre = s[s.size() / 2];
    double lo = -1e300, hi = 1e300;
    for (int it = 0; it < 5; ++it) {
        double sum = 0, sum2 = 0;
        std::size_t n = 0;
        for (double x : v)
            if (x >= lo && x <= hi) {
                sum += x;
                sum2 += x * x;
                ++n;
            }
        if (n == 0) break;
        const double mean = sum / static_cast<double>(n);
        const double sd = n > 1 ? std::sqrt(std::max(0.0, sum2 / n - mean * mean)) : 0.0;
        centre = mean;
        const double nlo = mean - k * sd, nhi = mean + k * sd;
        if (nlo == lo && nhi == hi) break;
        lo = nlo;
        hi = nhi;
    }
    return centre;
}

void requireSameBox(const Exposure* master, const Box2I& box, const char* what) {
    if (master && master->bbox() != box)
        throw badInput(std::string("ISR: the master ") + what + " box does not match the raw " +
                       "detector box");
}

}  // namespace

MaskedImage assembleElectrons(const RawExposure& raw, const IsrConfig& config) {
    config.validate();
    if (raw.amps.empty()) throw badInput("ISR: raw exposure without amplifiers");
    MaskedImage out(raw.detectorBox);
    const MaskPixel sat = out.mask().planes().bit("SAT");
    for (const Amplifier& amp : raw.amps) {
        if (!raw.pixels.bbox().contains(amp.dataBox) ||
            !raw.pixels.bbox().contains(amp.overscanBox) ||
            !raw.detectorBox.contains(amp.detectorBox) ||
            amp.dataBox.height() != amp.overscanBox.height() ||
            amp.dataBox.width() != amp.detectorBox.width() ||
            amp.dataBox.height() != amp.detectorBox.height())
            throw badInput("ISR: inconsistent geometry of amplifier " + amp.name);
        const int h = amp.dataBox.height();
        std::vector<double> level(static_cast<std::size_t>(h));
        std::vector<double> row;
        for (int r = 0; r < h; ++r) {
            row.clear();
            const int y = amp.overscanBox.min().y + r;
            for (int x = amp.overscanBox.min().x; x <= amp.overscanBox.max().x; ++x)
                row.push_back(raw.pixels(x, y));
            level[static_cast<std::size_t>(r)] = clippedMean(row, config.overscanClipSigma);
        }
        if (config.overscanSmoothRows > 0) {
            std::vector<double> sm(level.size());
            for (int r = 0; r < h; ++r) {
                const int a = std::max(0, r - config.overscanSmoothRows),
                          b = std::min(h - 1, r + config.overscanSmoothRows);
                double s = 0;
                for (int k = a; k <= b; ++k) s += level[static_cast<std::size_t>(k)];
                sm[static_cast<std::size_t>(r)] = s / (b - a + 1);
            }
            level = std::move(sm);
        }
        // Read noise + quantisation + the noise of the overscan estimate (common to the row).
        const double nOs =
            static_cast<double>(amp.overscanBox.width()) * (2 * config.overscanSmoothRows + 1);
        const double rn2 = amp.readNoise * amp.readNoise;
        const double var = rn2 + amp.gain * amp.gain / 12.0 + rn2 / nOs;
        const int w = amp.dataBox.width();
        const float varF = static_cast<float>(var);
        const double saturation = amp.saturation, gain = amp.gain;
        for (int r = 0; r < h; ++r) {
            const int ry = amp.dataBox.min().y + r, dy = amp.detectorBox.min().y + r;
            const double os = level[static_cast<std::size_t>(r)];
            const auto* in = raw.pixels.row(ry) + amp.dataBox.min().x;
            const int dx0 = amp.detectorBox.min().x;
            float* img = out.image().row(dy) + dx0;
            float* vr = out.variance().row(dy) + dx0;
            MaskPixel* mk = out.mask().image().row(dy) + dx0;
            for (int c = 0; c < w; ++c) {
                const double adu = in[c];
                img[c] = static_cast<float>((adu - os) * gain);
                vr[c] = varF;
                if (adu >= saturation) mk[c] |= sat;
            }
        }
    }
    return out;
}

Exposure runIsr(const RawExposure& raw, const IsrCalibrations& calibs, const IsrConfig& config) {
    const Box2I box = raw.detectorBox;
    requireSameBox(calibs.bias, box, "bias");
    requireSameBox(calibs.dark, box, "dark");
    requireSameBox(calibs.flat, box, "flat");
    Exposure out(assembleElectrons(raw, config));
    ImageF& img = out.image();
    ImageF& var = out.variance();
    Mask& mask = out.mask();
    const MaskPlanes& planes = mask.planes();
    const MaskPixel bad = planes.bit("BAD"), sat = planes.bit("SAT"),
                    suspect = planes.bit("SUSPECT"), noData = planes.bit("NO_DATA");
    // A master's BAD or NO_DATA pixel is a defect of the science pixel (bits looked up once:
    // a per-pixel plane-name lookup dominated the ISR's cost).
    const MaskPixel biasBad =
                        calibs.bias ? calibs.bias->mask().planes().bits({"BAD", "NO_DATA"}) : 0,
                    darkBad =
                        calibs.dark ? calibs.dark->mask().planes().bits({"BAD", "NO_DATA"}) : 0,
                    flatBad =
                        calibs.flat ? calibs.flat->mask().planes().bits({"BAD", "NO_DATA"}) : 0;
    const double t = raw.visitInfo.exposureTime;
    // Row pointers, and the masters' presence tested once per row: a per-pixel accessor and
    // null test for each of seven planes made this loop slower than the same steps in numpy.
    for (int y = 0; y < box.height(); ++y) {
        float* im = img.row(y);
        float* vr = var.row(y);
        MaskPixel* mk = mask.image().row(y);
        const float *bI = nullptr, *bV = nullptr, *dI = nullptr, *dV = nullptr, *fI = nullptr,
                    *fV = nullptr;
        const MaskPixel *bM = nullptr, *dM = nullptr, *fM = nullptr;
        if (calibs.bias) {
            bI = calibs.bias->image().row(y);
            bV = calibs.bias->variance().row(y);
            bM = calibs.bias->mask().image().row(y);
        }
        if (calibs.dark) {
            dI = calibs.dark->image().row(y);
            dV = calibs.dark->variance().row(y);
            dM = calibs.dark->mask().image().row(y);
        }
        if (calibs.flat) {
            fI = calibs.flat->image().row(y);
            fV = calibs.flat->variance().row(y);
            fM = calibs.flat->mask().image().row(y);
        }
        for (int x = 0; x < box.width(); ++x) {
            double v = im[x], s2 = vr[x];
            if (bI) {
                v -= bI[x];
                s2 += bV[x];
            }
            if (dI) {
                v -= dI[x] * t;
                s2 += dV[x] * t * t;
            }
            s2 += std::max(v, 0.0);  // Poisson noise of the detected charge
            if ((bM && (bM[x] & biasBad)) || (dM && (dM[x] & darkBad)) || (fM && (fM[x] & flatBad)))
                mk[x] |= bad;
            if (fI) {
                const double f = fI[x];
                if (!(f > 0) || !std::isfinite(f)) {
                    mk[x] |= bad | noData;
                    v = 0;
                } else {
                    v /= f;
                    s2 = s2 / (f * f) + v * v * fV[x] / (f * f);
                }
            }
            im[x] = static_cast<float>(v);
            vr[x] = static_cast<float>(s2);
        }
    }
    // SUSPECT border of saturated areas.
    const int g = config.suspectGrow;
    if (g > 0) {
        for (int y = 0; y < box.height(); ++y)
            for (int x = 0; x < box.width(); ++x) {
                if (!(mask(x, y) & sat)) continue;
                for (int yy = std::max(0, y - g); yy <= std::min(box.height() - 1, y + g); ++yy)
                    for (int xx = std::max(0, x - g); xx <= std::min(box.width() - 1, x + g); ++xx)
                        if (!(mask(xx, yy) & sat)) mask.set(xx, yy, suspect);
            }
    }
    out.visitInfo() = raw.visitInfo;
    out.setWcs(raw.wcs);
    out.setPhotoCalib(raw.photoCalib);
    out.metadata() = raw.metadata;
    return out;
}

}  // namespace drp::calib
