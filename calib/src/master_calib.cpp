#include "drp/calib/master_calib.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>

#include "drp/core/error.h"

namespace drp::calib {

void MasterCalibConfig::validate() const {
    auto need = [](bool ok, const std::string& what) {
        if (!ok) throw configError("master calibration config: " + what);
    };
    need(clipSigma > 1, "clipSigma must be > 1");
    need(maxIterations >= 1, "maxIterations must be >= 1");
    need(growSigma >= clipSigma, "growSigma must be >= clipSigma");
    need(growRadius >= 0, "growRadius must be >= 0");
    need(minInputs >= 1, "minInputs must be >= 1");
    need(validityDays >= 0, "validityDays must be >= 0");
    need(hotDarkThreshold > 0, "hotDarkThreshold must be > 0");
    need(deadFlatThreshold > 0 && deadFlatThreshold < 1 && hotFlatThreshold > 1,
         "need 0 < deadFlatThreshold < 1 < hotFlatThreshold");
    isr.validate();
}

namespace {

constexpr std::uint8_t kKept = 0, kClipped = 1, kStrong = 2, kGrown = 3, kUnusable = 4;

// σ-clipped mean of a whole image's usable pixels (3σ around the median, σ from the MAD, then
// the mean of what is inside): the level of a flat, robust to stars and dead columns.
double imageLevel(const MaskedImage& mi, MaskPixel skip) {
    std::vector<double> v;
    v.reserve(static_cast<std::size_t>(mi.bbox().area()));
    for (int y = 0; y < mi.bbox().height(); ++y)
        for (int x = 0; x < mi.bbox().width(); ++x)
            if (!(mi.mask()(x, y) & skip)) v.push_back(mi.image()(x, y));
    if (v.empty()) throw badInput("master flat: an input has no usable pixels");
    auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    const double median = *mid;
    std::vector<double> dev(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) dev[i] = std::abs(v[i] - median);
    auto dmid = dev.begin() + static_cast<std::ptrdiff_t>(dev.size() / 2);
    std::nth_element(dev.begin(), dmid, dev.end());
    const double sigma = 1.4826 * *dmid;
    double sum = 0;
    std::size_t n = 0;
    for (double x : v)
        if (std::abs(x - median) <= 3 * sigma) {
            sum += x;
            ++n;
        }
    return n ? sum / static_cast<double>(n) : median;
}

// Partial ISR of a calibration input: overscan, gain, − bias, − dark × t. The variance plane
// keeps the read-noise variance only (what robustCombine wants).
MaskedImage partialIsr(const RawExposure& raw, const Exposure* bias, const Exposure* dark,
                       const MasterCalibConfig& config) {
    MaskedImage mi = assembleElectrons(raw, config.isr);
    for (const Exposure* m : {bias, dark})
        if (m && m->bbox() != mi.bbox())
            throw badInput("master calibration: a master's box does not match the raw's");
    const double t = raw.visitInfo.exposureTime;
    for (int y = 0; y < mi.bbox().height(); ++y)
        for (int x = 0; x < mi.bbox().width(); ++x) {
            float v = mi.image()(x, y);
            if (bias) v -= bias->image()(x, y);
            if (dark) v -= static_cast<float>(dark->image()(x, y) * t);
            mi.image()(x, y) = v;
        }
    return mi;
}

void checkInputs(const std::vector<RawExposure>& raws, const std::string& type,
                 const MasterCalibConfig& config) {
    config.validate();
    if (static_cast<int>(raws.size()) < config.minInputs)
        throw Error("calibration_failed", "master " + type + ": " + std::to_string(raws.size()) +
                                              " inputs, need at least " +
                                              std::to_string(config.minInputs));
    for (const RawExposure& r : raws) {
        if (r.obsType != type)
            throw badInput("master " + type + ": exposure " + std::to_string(r.visitInfo.visit) +
                           " is a " + r.obsType);
        if (r.visitInfo.detector != raws.front().visitInfo.detector)
            throw badInput("master " + type + ": inputs from detectors " +
                           std::to_string(raws.front().visitInfo.detector) + " and " +
                           std::to_string(r.visitInfo.detector));
        if (r.visitInfo.band != raws.front().visitInfo.band)
            throw badInput("master " + type + ": inputs in bands " + raws.front().visitInfo.band +
                           " and " + r.visitInfo.band);
    }
}

// Metadata and VisitInfo of a master.
void describeMaster(Exposure& m, const std::vector<RawExposure>& raws, const std::string& type,
                    const MasterCalibConfig& config, const CombineStats& stats) {
    std::vector<double> mjds;
    std::ostringstream ids;
    for (std::size_t i = 0; i < raws.size(); ++i) {
        mjds.push_back(raws[i].visitInfo.mjd);
        ids << (i ? "," : "") << raws[i].visitInfo.visit;
    }
    const CalibValidity v = calibValidity(mjds, config.validityDays);
    VisitInfo& vi = m.visitInfo();
    vi.detector = raws.front().visitInfo.detector;
    vi.band = raws.front().visitInfo.band;
    vi.mjd = v.mjd;
    PropertyList& md = m.metadata();
    md.set("CALTYPE", type, "master calibration type");
    md.set("CALDET", static_cast<std::int64_t>(vi.detector), "detector");
    if (!vi.band.empty()) md.set("CALBAND", vi.band, "band of the flat");
    md.set("VALIDSTA", v.start, "valid for raw MJD >= this");
    md.set("VALIDEND", v.end, "valid for raw MJD <= this");
    md.set("CALMJD", v.mjd, "mean MJD of the inputs");
    md.set("NCOMBINE", static_cast<std::int64_t>(raws.size()), "number of input exposures");
    md.set("CALINPUT", ids.str(), "input exposure ids (provenance)");
    md.set("REJFRAC",
           stats.values ? static_cast<double>(stats.rejected) / static_cast<double>(stats.values)
                        : 0.0,
           "fraction of input pixel values rejected");
    md.set("CLIPSIG", config.clipSigma, "per-pixel rejection threshold [sigma]");
}

}  // namespace

MaskedImage robustCombine(const std::vector<CombineInput>& inputs, bool poisson,
                          const MasterCalibConfig& config, CombineStats* stats) {
    config.validate();
    if (inputs.empty()) throw badInput("robustCombine: no inputs");
    const Box2I box = inputs.front().image->bbox();
    for (const CombineInput& in : inputs) {
        if (!in.image || in.image->bbox() != box)
            throw badInput("robustCombine: inputs of different boxes");
        if (!(in.scale > 0)) throw badInput("robustCombine: scale must be > 0");
    }
    const std::size_t n = inputs.size();
    const int w = box.width(), h = box.height();
    const std::size_t npix = static_cast<std::size_t>(box.area());
    std::vector<std::vector<std::uint8_t>> state(n, std::vector<std::uint8_t>(npix, kKept));
    std::vector<float> centre(npix, 0.0f);
    const MaskPixel skip = inputs.front().image->mask().planes().bits({"SAT", "SUSPECT"});
    auto sigma2 = [&](std::size_t i, double c, int x, int y) {
        const double s = inputs[i].scale;
        const double rv = inputs[i].image->variance()(x, y);
        return ((poisson ? std::max(c, 0.0) * s : 0.0) + rv) / (s * s);
    };
    auto value = [&](std::size_t i, int x, int y) {
        return inputs[i].image->image()(x, y) / inputs[i].scale;
    };

    // 1. Per-pixel clipping around the median, then around the weighted mean.
    std::vector<double> buf;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const std::size_t p = static_cast<std::size_t>(y) * w + x;
            buf.clear();
            for (std::size_t i = 0; i < n; ++i) {
                if (inputs[i].image->mask()(x, y) & skip)
                    state[i][p] = kUnusable;
                else
                    buf.push_back(value(i, x, y));
            }
            if (buf.empty()) continue;
            auto mid = buf.begin() + static_cast<std::ptrdiff_t>(buf.size() / 2);
            std::nth_element(buf.begin(), mid, buf.end());
            double c = *mid;
            if (buf.size() % 2 == 0) c = 0.5 * (c + *std::max_element(buf.begin(), mid));
            for (int it = 0; it < config.maxIterations; ++it) {
                double sw = 0, swv = 0;
                bool changed = false;
                for (std::size_t i = 0; i < n; ++i) {
                    if (state[i][p] == kUnusable) continue;
                    const double s2 = sigma2(i, c, x, y), d = value(i, x, y) - c;
                    const std::uint8_t st =
                        d * d > config.clipSigma * config.clipSigma * s2 ? kClipped : kKept;
                    changed = changed || st != state[i][p];
                    state[i][p] = st;
                    if (st == kKept) {
                        sw += 1 / s2;
                        swv += value(i, x, y) / s2;
                    }
                }
                if (sw > 0) c = swv / sw;
                if (!changed && it > 0) break;
            }
            centre[p] = static_cast<float>(c);
            for (std::size_t i = 0; i < n; ++i) {
                if (state[i][p] != kClipped) continue;
                const double d = value(i, x, y) - c;
                if (d * d > config.growSigma * config.growSigma * sigma2(i, c, x, y))
                    state[i][p] = kStrong;
            }
        }

    // 2. Grow strong rejections within each input.
    const int r = config.growRadius;
    if (r > 0)
        for (std::size_t i = 0; i < n; ++i)
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x) {
                    if (state[i][static_cast<std::size_t>(y) * w + x] != kStrong) continue;
                    for (int yy = std::max(0, y - r); yy <= std::min(h - 1, y + r); ++yy)
                        for (int xx = std::max(0, x - r); xx <= std::min(w - 1, x + r); ++xx) {
                            std::uint8_t& s = state[i][static_cast<std::size_t>(yy) * w + xx];
                            if (s == kKept) s = kGrown;
                        }
                }

    // 3. Weighted mean of the kept values.
    MaskedImage out(box);
    const MaskPixel noData = out.mask().planes().bit("NO_DATA");
    CombineStats st;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const std::size_t p = static_cast<std::size_t>(y) * w + x;
            double sw = 0, swv = 0;
            for (std::size_t i = 0; i < n; ++i) {
                if (state[i][p] != kUnusable) ++st.values;
                if (state[i][p] != kKept) {
                    ++st.rejected;
                    continue;
                }
                const double s2 = sigma2(i, centre[p], x, y);
                sw += 1 / s2;
                swv += value(i, x, y) / s2;
            }
            if (sw > 0) {
                out.image()(x, y) = static_cast<float>(swv / sw);
                out.variance()(x, y) = static_cast<float>(1 / sw);
            } else {
                out.mask().set(x, y, noData);
                out.image()(x, y) = 0.0f;
                out.variance()(x, y) = 0.0f;
            }
        }
    if (stats) *stats = st;
    return out;
}

Exposure makeMasterBias(const std::vector<RawExposure>& biases, const MasterCalibConfig& config) {
    checkInputs(biases, obs_type::kBias, config);
    std::vector<MaskedImage> ims;
    for (const RawExposure& r : biases) ims.push_back(partialIsr(r, nullptr, nullptr, config));
    std::vector<CombineInput> in;
    for (const MaskedImage& m : ims) in.push_back({&m, 1.0});
    CombineStats stats;
    Exposure out(robustCombine(in, false, config, &stats));
    describeMaster(out, biases, obs_type::kBias, config, stats);
    return out;
}

Exposure makeMasterDark(const std::vector<RawExposure>& darks, const Exposure& bias,
                        const MasterCalibConfig& config) {
    checkInputs(darks, obs_type::kDark, config);
    std::vector<MaskedImage> ims;
    std::vector<CombineInput> in;
    double sumInvT2 = 0;
    for (const RawExposure& r : darks) {
        if (!(r.visitInfo.exposureTime > 0))
            throw badInput("master dark: exposure " + std::to_string(r.visitInfo.visit) +
                           " has no exposure time");
        ims.push_back(partialIsr(r, &bias, nullptr, config));
        sumInvT2 += 1 / (r.visitInfo.exposureTime * r.visitInfo.exposureTime);
    }
    for (std::size_t i = 0; i < ims.size(); ++i)
        in.push_back({&ims[i], darks[i].visitInfo.exposureTime});
    CombineStats stats;
    Exposure out(robustCombine(in, true, config, &stats));
    // The master bias error is common to every input: it adds bias variance × <1/t²>.
    const double invT2 = sumInvT2 / static_cast<double>(darks.size());
    const MaskPixel bad = out.mask().planes().bit("BAD");
    const MaskPixel biasBad = bias.mask().planes().bits({"BAD", "NO_DATA"});
    for (int y = 0; y < out.bbox().height(); ++y)
        for (int x = 0; x < out.bbox().width(); ++x) {
            out.variance()(x, y) += static_cast<float>(bias.variance()(x, y) * invT2);
            if (out.image()(x, y) > config.hotDarkThreshold || (bias.mask()(x, y) & biasBad))
                out.mask().set(x, y, bad);
        }
    describeMaster(out, darks, obs_type::kDark, config, stats);
    return out;
}

Exposure makeMasterFlat(const std::vector<RawExposure>& flats, const Exposure& bias,
                        const Exposure& dark, const MasterCalibConfig& config) {
    checkInputs(flats, obs_type::kFlat, config);
    std::vector<MaskedImage> ims;
    for (const RawExposure& r : flats) ims.push_back(partialIsr(r, &bias, &dark, config));
    const MaskPixel skip = ims.front().mask().planes().bits({"SAT", "SUSPECT"});
    std::vector<CombineInput> in;
    std::vector<double> levels;
    for (const MaskedImage& m : ims) {
        const double level = imageLevel(m, skip);
        if (!(level > 0))
            throw Error("calibration_failed",
                        "master flat: an input has a non-positive level " + std::to_string(level));
        levels.push_back(level);
        in.push_back({&m, level});
    }
    CombineStats stats;
    Exposure out(robustCombine(in, true, config, &stats));
    // Normalise: defects relative to the median, then mean 1 over the live pixels.
    const MaskPixel bad = out.mask().planes().bit("BAD"),
                    dead = out.mask().planes().bits({"BAD", "NO_DATA"});
    std::vector<double> v;
    for (int y = 0; y < out.bbox().height(); ++y)
        for (int x = 0; x < out.bbox().width(); ++x)
            if (!(out.mask()(x, y) & dead)) v.push_back(out.image()(x, y));
    if (v.empty()) throw Error("calibration_failed", "master flat: no usable pixels");
    auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), mid, v.end());
    const double median = *mid;
    double sum = 0;
    std::int64_t nLive = 0;
    for (int y = 0; y < out.bbox().height(); ++y)
        for (int x = 0; x < out.bbox().width(); ++x) {
            if (out.mask()(x, y) & dead) continue;
            const double f = out.image()(x, y) / median;
            if (f < config.deadFlatThreshold || f > config.hotFlatThreshold) {
                out.mask().set(x, y, bad);
                continue;
            }
            sum += out.image()(x, y);
            ++nLive;
        }
    const double norm = sum / static_cast<double>(nLive);
    // The subtracted masters' errors are common to every input, in units of the mean level.
    double meanLevel = 0, meanT = 0;
    for (std::size_t i = 0; i < flats.size(); ++i) {
        meanLevel += levels[i] / static_cast<double>(flats.size());
        meanT += flats[i].visitInfo.exposureTime / static_cast<double>(flats.size());
    }
    for (int y = 0; y < out.bbox().height(); ++y)
        for (int x = 0; x < out.bbox().width(); ++x) {
            const double common = (bias.variance()(x, y) + dark.variance()(x, y) * meanT * meanT) /
                                  (meanLevel * meanLevel);
            out.image()(x, y) = static_cast<float>(out.image()(x, y) / norm);
            out.variance()(x, y) =
                static_cast<float>((out.variance()(x, y) + common) / (norm * norm));
        }
    describeMaster(out, flats, obs_type::kFlat, config, stats);
    out.metadata().set("FLATNORM", norm, "mean of the combined flat over live pixels");
    return out;
}

CalibValidity calibValidity(const std::vector<double>& inputMjds, double validityDays) {
    if (inputMjds.empty()) throw badInput("calibValidity: no input dates");
    const auto [lo, hi] = std::minmax_element(inputMjds.begin(), inputMjds.end());
    double sum = 0;
    for (double m : inputMjds) sum += m;
    return {*lo - validityDays, *hi + validityDays, sum / static_cast<double>(inputMjds.size())};
}

std::optional<std::size_t> selectCalibration(const std::vector<CalibValidity>& candidates,
                                             double mjd) {
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        const CalibValidity& c = candidates[i];
        if (mjd < c.start || mjd > c.end) continue;
        if (!best || std::abs(mjd - c.mjd) < std::abs(mjd - candidates[*best].mjd)) best = i;
    }
    return best;
}

}  // namespace drp::calib
