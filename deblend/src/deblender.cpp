#include "drp/deblend/deblender.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <tuple>

#include <Eigen/Dense>

#include "drp/core/error.h"

namespace drp::deblend {

void MultiBandDetectionConfig::validate() const {
    detection.validate();
    if (!(peakMergeRadius >= 0)) throw configError("detect.peak-merge-radius must be >= 0");
    if (!(shoulderMinSeparation > 0))
        throw configError("detect.shoulder-min-separation must be > 0");
    if (!(shoulderMinFraction >= 0 && shoulderMinFraction < 1))
        throw configError("detect.shoulder-min-fraction must be in [0, 1)");
    if (!(shoulderPsfExcess >= 0)) throw configError("detect.shoulder-psf-excess must be >= 0");
}

void DeblendConfig::validate() const {
    if (maxIterations < 1) throw configError("deblend.max-iterations must be >= 1");
    if (minIterations < 1) throw configError("deblend.min-iterations must be >= 1");
    if (!(relativeTolerance > 0 && relativeTolerance < 1))
        throw configError("deblend.relative-tolerance must be in (0, 1)");
    if (maxPeaks < 2) throw configError("deblend.max-peaks must be >= 2");
    if (maxPixels < 1) throw configError("deblend.max-pixels must be >= 1");
    if (!(matchSmoothing >= 0 && matchSmoothing < 10))
        throw configError("deblend match smoothing must be in [0, 10) px");
    if (!(residualThreshold > 0)) throw configError("deblend residual threshold must be > 0");
    if (!(residualMinFraction >= 0 && residualMinFraction < 1))
        throw configError("deblend residual min fraction must be in [0, 1)");
    if (!(residualMinSeparation > 0))
        throw configError("deblend residual min separation must be > 0");
    if (!(residualPsfExcess >= 0)) throw configError("deblend residual PSF excess must be >= 0");
    if (!(residualCompactness >= 0 && residualCompactness < 1))
        throw configError("deblend residual compactness must be in [0, 1)");
    if (!(residualMinParentSignificance >= 0))
        throw configError("deblend residual min parent significance must be >= 0");
    if (!(pruneRadius >= 0)) throw configError("deblend prune radius must be >= 0");
    if (pruneMaxRefits < 0) throw configError("deblend prune max refits must be >= 0");
}

double psfGaussianSigma(ConstImageView<double> kernel) {
    const Box2I box = kernel.bbox();
    double sum = 0, cx = 0, cy = 0, peak = 0;
    for (int y = box.minY(); y <= box.maxY(); ++y)
        for (int x = box.minX(); x <= box.maxX(); ++x) {
            double v = kernel.at({x, y});
            sum += v;
            cx += v * x;
            cy += v * y;
            peak = std::max(peak, v);
        }
    if (!(sum > 0) || !(peak > 0)) throw badInput("psfGaussianSigma: empty PSF kernel");
    cx /= sum;
    cy /= sum;
    // Start from the σ of a Gaussian with the same peak-to-total ratio: 1/(2π σ²).
    double sw = std::sqrt(sum / (2 * M_PI * peak));
    for (int it = 0; it < 50; ++it) {
        double w0 = 0, m = 0;
        for (int y = box.minY(); y <= box.maxY(); ++y)
            for (int x = box.minX(); x <= box.maxX(); ++x) {
                double r2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                double w = std::exp(-0.5 * r2 / (sw * sw)) * kernel.at({x, y});
                w0 += w;
                m += w * r2;
            }
        double next = std::sqrt(m / w0);  // σ_w² = 2 M, M = m / (2 w0) per axis
        if (!(next > 0)) throw badInput("psfGaussianSigma: degenerate PSF kernel");
        bool done = std::abs(next - sw) < 1e-6 * sw;
        sw = next;
        if (done) break;
    }
    return sw;
}

namespace {

/// Matched-filter flux N = K ⋆ I and its variance V_N = K² ⋆ V (K the normalised Gaussian of
/// σ = psfSigma, width ceil(nSigmaForKernel σ) | 1, as calib::matchedFilterSignificance) on
/// `box` (clipped to the image); excluded or invalid pixels have zero weight.
struct FilteredImage {
    Box2I box;
    ImageD flux, var;
};

FilteredImage filteredImage(const MaskedImage& mi, Box2I box, double psfSigma,
                            double nSigmaForKernel, MaskPixel exclude) {
    box = box.clippedTo(mi.bbox());
    const int h = (static_cast<int>(std::ceil(nSigmaForKernel * psfSigma)) | 1) / 2;
    std::vector<double> g(2 * h + 1);
    double sum = 0;
    for (int d = -h; d <= h; ++d) sum += g[d + h] = std::exp(-0.5 * d * d / (psfSigma * psfSigma));
    for (double& v : g) v /= sum;
    const Box2I wide = box.grownBy(h).clippedTo(mi.bbox());
    // The usable pixels of `wide` (others 0: they add nothing below), read once.
    const int ww = wide.width(), wh = wide.height();
    std::vector<double> ua(std::size_t(ww) * wh, 0.0), uv(ua.size(), 0.0);
    const Box2I ib = mi.bbox();
    for (int y = wide.minY(); y <= wide.maxY(); ++y) {
        const int j = y - ib.minY(), c0 = wide.minX() - ib.minX();
        const auto* im = mi.image().row(j) + c0;
        const auto* va = mi.variance().row(j) + c0;
        const auto* mk = mi.mask().image().row(j) + c0;
        double* pa = ua.data() + std::size_t(y - wide.minY()) * ww;
        double* pv = uv.data() + std::size_t(y - wide.minY()) * ww;
        for (int i = 0; i < ww; ++i) {
            const double v = va[i], a = im[i];
            if ((mk[i] & exclude) || !(v > 0) || !std::isfinite(v) || !std::isfinite(a)) continue;
            pa[i] = a;
            pv[i] = v;
        }
    }
    ImageD ti(Box2I(Point2I{box.minX(), wide.minY()}, Extent2I{box.width(), wide.height()}), 0.0);
    ImageD tv(ti.bbox(), 0.0);
    for (int y = wide.minY(); y <= wide.maxY(); ++y) {
        const double* ra = ua.data() + std::size_t(y - wide.minY()) * ww;
        const double* rv = uv.data() + std::size_t(y - wide.minY()) * ww;
        for (int x = box.minX(); x <= box.maxX(); ++x) {
            double si = 0, sv = 0;
            const int x0 = x - wide.minX();  // x's column in the rows above
            for (int d = std::max(-h, wide.minX() - x); d <= std::min(h, wide.maxX() - x); ++d) {
                si += g[d + h] * ra[x0 + d];
                sv += g[d + h] * g[d + h] * rv[x0 + d];
            }
            ti.row(y - wide.minY())[x - box.minX()] = si;
            tv.row(y - wide.minY())[x - box.minX()] = sv;
        }
    }
    // Vertical pass, row by row (each pixel's taps still added in kernel order).
    FilteredImage out{box, ImageD(box, 0.0), ImageD(box, 0.0)};
    const int bw = box.width();
    for (int y = box.minY(); y <= box.maxY(); ++y) {
        double* of = out.flux.row(y - box.minY());
        double* ov = out.var.row(y - box.minY());
        for (int d = std::max(-h, wide.minY() - y); d <= std::min(h, wide.maxY() - y); ++d) {
            const double gd = g[d + h], gg = g[d + h] * g[d + h];
            const double* ri = ti.row(y + d - wide.minY());
            const double* rv = tv.row(y + d - wide.minY());
            for (int i = 0; i < bw; ++i) {
                of[i] += gd * ri[i];
                ov[i] += gg * rv[i];
            }
        }
    }
    return out;
}

/// Bilinear interpolation of `im` at p; false when p is outside the box.
bool bilinear(const ImageD& im, Point2D p, double& out) {
    const Box2I b = im.bbox();
    const double fx = p.x - b.minX(), fy = p.y - b.minY();
    const int i = static_cast<int>(std::floor(fx)), j = static_cast<int>(std::floor(fy));
    if (i < 0 || j < 0 || i + 1 >= b.width() || j + 1 >= b.height()) {
        if (i >= 0 && j >= 0 && i < b.width() && j < b.height() && fx == i && fy == j) {
            out = im(i, j);
            return true;
        }
        return false;
    }
    const double tx = fx - i, ty = fy - j;
    out = (1 - ty) * ((1 - tx) * im(i, j) + tx * im(i + 1, j)) +
          ty * ((1 - tx) * im(i, j + 1) + tx * im(i + 1, j + 1));
    return true;
}

/// Sub-pixel centre of the filtered image's maximum near pixel p: separable parabola through
/// the 3×3 neighbourhood, offsets clamped to ±1 px.
Point2D refinedCentre(const ImageD& n, Point2I p) {
    const Box2I b = n.bbox().grownBy(-1);
    if (!b.contains(p)) return Point2D(p);
    auto vertex = [](double m, double c, double q) {
        const double den = m - 2 * c + q;
        return den < 0 ? std::clamp(0.5 * (m - q) / den, -1.0, 1.0) : 0.0;
    };
    return {p.x + vertex(n.at({p.x - 1, p.y}), n.at(p), n.at({p.x + 1, p.y})),
            p.y + vertex(n.at({p.x, p.y - 1}), n.at(p), n.at({p.x, p.y + 1}))};
}

}  // namespace

ImageD filteredPsfProfile(const ImageD* psfKernel, double psfSigma, double nSigmaForKernel) {
    if (!psfKernel || psfKernel->width() < 3 || psfKernel->height() < 3) {
        // No kernel: a Gaussian PSF of σ filtered by a Gaussian of σ is a Gaussian of σ√2.
        const int r = static_cast<int>(std::ceil(6 * psfSigma));
        ImageD out(Box2I({-r, -r}, Extent2I{2 * r + 1, 2 * r + 1}), 0.0);
        for (int y = -r; y <= r; ++y)
            for (int x = -r; x <= r; ++x)
                out.at({x, y}) = std::exp(-0.25 * (x * x + y * y) / (psfSigma * psfSigma));
        return out;
    }
    const ImageD& k = *psfKernel;
    const int rx = (k.width() - 1) / 2, ry = (k.height() - 1) / 2;
    const int h = (static_cast<int>(std::ceil(nSigmaForKernel * psfSigma)) | 1) / 2;
    std::vector<double> g(2 * h + 1);
    double gs = 0;
    for (int d = -h; d <= h; ++d) gs += g[d + h] = std::exp(-0.5 * d * d / (psfSigma * psfSigma));
    for (double& v : g) v /= gs;
    // The kernel on a box centred on 0 (its centre pixel), then the separable filter.
    const Box2I kb({-rx, -ry}, Extent2I{k.width(), k.height()});
    const Box2I ob = kb.grownBy(h);
    ImageD tmp(ob, 0.0), out(ob, 0.0);
    for (int y = kb.minY(); y <= kb.maxY(); ++y)
        for (int x = ob.minX(); x <= ob.maxX(); ++x) {
            double s = 0;
            for (int d = -h; d <= h; ++d)
                if (kb.contains(Point2I{x + d, y})) s += g[d + h] * k(x + d + rx, y + ry);
            tmp.at({x, y}) = s;
        }
    for (int y = ob.minY(); y <= ob.maxY(); ++y)
        for (int x = ob.minX(); x <= ob.maxX(); ++x) {
            double s = 0;
            for (int d = -h; d <= h; ++d)
                if (ob.contains(Point2I{x, y + d})) s += g[d + h] * tmp.at({x, y + d});
            out.at({x, y}) = s;
        }
    const double c = out.at({0, 0});
    if (!(c > 0)) throw badInput("filteredPsfProfile: PSF kernel has no flux at its centre");
    for (double& v : out.pixels()) v /= c;
    return out;
}

std::vector<Peak> shoulderPeaks(const Footprint& footprint, const MaskedImage& band,
                                double psfSigma, const MultiBandDetectionConfig& config,
                                const ImageD* psfKernel, const ImageD* filteredProfile) {
    const calib::DetectionConfig& dc = config.detection;
    MaskPixel exclude = 0;
    for (const auto& name : dc.excludedMaskPlanes)
        if (band.mask().planes().has(name)) exclude |= band.mask().planes().bit(name);
    // The mirror of a footprint pixel about a peak inside it lies within the bbox grown by the
    // bbox's size.
    const Box2I fbox = footprint.bbox();
    const Box2I box = fbox.grownBy(std::max(fbox.width(), fbox.height()));
    FilteredImage f = filteredImage(band, box, psfSigma, dc.nSigmaForKernel, exclude);
    ImageD r = f.flux;  // residual
    ImageD rv = f.var;  // its variance
    std::vector<Peak> known = footprint.peaks();
    std::stable_sort(known.begin(), known.end(),
                     [](const Peak& a, const Peak& b) { return a.significance > b.significance; });
    const Box2I rb = f.box;
    ImageD tmpl(rb, 0.0);
    std::vector<std::pair<Point2D, double>> psfPeaks;  // (centre, filtered amplitude)
    for (const Peak& pk : known) {
        if (!rb.contains(pk.position)) continue;
        const Point2D c = refinedCentre(f.flux, pk.position);
        double amp = 0;
        if (bilinear(f.flux, c, amp) && amp > 0) psfPeaks.emplace_back(c, amp);
        // Symmetric template of this peak on the current residual (SDSS deblender): the lesser
        // of a pixel and its mirror image about the peak's centre, never negative.
        // (Rows through pointers: r, tmpl and rv all live on rb.)
        const int rw = rb.width();
        for (int y = rb.minY(); y <= rb.maxY(); ++y) {
            const double* rr = r.row(y - rb.minY());
            double* tr = tmpl.row(y - rb.minY());
            double* vr = rv.row(y - rb.minY());
            for (int i = 0; i < rw; ++i) {
                const int x = rb.minX() + i;
                if (!(rr[i] > 0)) {  // the template is 0 whatever the mirror holds
                    tr[i] = 0;
                    continue;
                }
                double m = 0;
                const Point2D q{2 * c.x - x, 2 * c.y - y};
                double t;
                if (!bilinear(r, q, m))
                    t = std::max(0.0, rr[i]);  // no mirror: explained (conservative)
                else
                    t = std::max(0.0, std::min(rr[i], m));
                tr[i] = t;
                if (t > 0 && t < rr[i]) {
                    double mv = 0;
                    if (bilinear(f.var, q, mv)) vr[i] += mv;
                }
            }
        }
        for (int j = 0; j < rb.height(); ++j) {
            double* rr = r.row(j);
            const double* tr = tmpl.row(j);
            for (int i = 0; i < rw; ++i) rr[i] -= tr[i];
        }
    }
    // Candidates: local maxima of the residual inside the footprint, significant in residual S/N,
    // a real fraction of the filtered flux there (PSF asymmetry and centring errors leave
    // residuals proportional to the neighbour's light) and at least `shoulderMinSeparation` from
    // every known peak.
    const double sep2 = std::pow(config.shoulderMinSeparation * psfSigma, 2);
    ImageD ownProfile;
    if (!filteredProfile) ownProfile = filteredPsfProfile(psfKernel, psfSigma, dc.nSigmaForKernel);
    const ImageD& profile = filteredProfile ? *filteredProfile : ownProfile;
    std::vector<Peak> cand;
    for (const Span& sp : footprint.spans().spans())
        for (int x = sp.x0; x <= sp.x1; ++x) {
            const Point2I p{x, sp.y};
            if (!rb.grownBy(-1).contains(p)) continue;
            const double v = r.at(p), var = rv.at(p);
            if (!(var > 0) || v < dc.thresholdSigma * std::sqrt(var) ||
                v < config.shoulderMinFraction * f.flux.at(p))
                continue;
            bool isMax = true;
            for (int dy = -1; dy <= 1 && isMax; ++dy)
                for (int dx = -1; dx <= 1 && isMax; ++dx)
                    if ((dx || dy) && r.at({x + dx, sp.y + dy}) > v) isMax = false;
            if (!isMax) continue;
            bool far = true;
            for (const Peak& k : known)
                far =
                    far && std::pow(k.position.x - x, 2) + std::pow(k.position.y - sp.y, 2) >= sep2;
            if (!far) continue;
            // PSF test: the filtered flux here must exceed, significantly and by more than the
            // PSF model's error, what the known peaks would leave as point sources (each a
            // filtered PSF scaled to its amplitude). A bump on a bright star's wing that the
            // symmetric template missed (PSF asymmetry, centring) has no such excess.
            double pred = 0;
            for (const auto& [c, a] : psfPeaks) {
                double phi = 0;
                if (bilinear(profile, Point2D(x - c.x, sp.y - c.y), phi))
                    pred += a * std::max(0.0, phi);
            }
            const double excess = f.flux.at(p) - pred;
            if (excess < config.shoulderPsfExcess * pred) continue;
            const double sn = v / std::sqrt(var);
            cand.push_back({p, Point2D(p), v, sn});
        }
    std::stable_sort(cand.begin(), cand.end(),
                     [](const Peak& a, const Peak& b) { return a.significance > b.significance; });
    std::vector<Peak> out;
    for (const Peak& c : cand) {
        bool far = true;
        for (const Peak& o : out)
            far = far && std::pow(o.position.x - c.position.x, 2) +
                                 std::pow(o.position.y - c.position.y, 2) >=
                             sep2;
        if (far) out.push_back(c);
    }
    return out;
}

std::vector<Footprint> detectMultiBand(std::vector<MaskedImage*> bands,
                                       const std::vector<double>& psfSigma,
                                       const MultiBandDetectionConfig& config,
                                       const std::vector<ImageD>& psfKernels) {
    config.validate();
    if (bands.empty() || bands.size() != psfSigma.size())
        throw badInput("detectMultiBand: need one PSF width per band");
    if (!psfKernels.empty() && psfKernels.size() != bands.size())
        throw badInput("detectMultiBand: need one PSF kernel per band (or none)");
    const Box2I box = bands.front()->bbox();
    Image<std::uint8_t> any(box, 0);
    struct BandPeak {
        Peak peak;
        std::size_t band;
    };
    std::vector<BandPeak> peaks;
    for (std::size_t b = 0; b < bands.size(); ++b) {
        if (!(bands[b]->bbox() == box))
            throw badInput("detectMultiBand: band images have different bounding boxes");
        calib::DetectionResult det = calib::detectSources(*bands[b], psfSigma[b], config.detection);
        for (const auto& fp : det.footprints) {
            for (const Span& s : fp.spans().spans())
                for (int x = s.x0; x <= s.x1; ++x) any(x - box.minX(), s.y - box.minY()) = 1;
            for (const Peak& p : fp.peaks()) peaks.push_back({p, b});
        }
    }
    // Merge peaks across bands: most significant first; a peak of another band closer than the
    // merge radius to an accepted one is the same object (peaks of one band were already
    // separated by the detection's minimum separation and prominence, and are all kept). Ties
    // are broken by position so the result does not depend on band order.
    std::sort(peaks.begin(), peaks.end(), [](const BandPeak& a, const BandPeak& b) {
        if (a.peak.significance != b.peak.significance)
            return a.peak.significance > b.peak.significance;
        return a.peak.position < b.peak.position;
    });
    std::vector<BandPeak> accepted;
    std::vector<std::vector<std::size_t>> absorbed;  // per accepted peak: the peaks merged into it
    const double r2 = config.peakMergeRadius * config.peakMergeRadius;
    for (std::size_t i = 0; i < peaks.size(); ++i) {
        const BandPeak& p = peaks[i];
        bool dup = false;
        for (std::size_t a = 0; a < accepted.size(); ++a) {
            const BandPeak& q = accepted[a];
            const double dx = p.peak.position.x - q.peak.position.x,
                         dy = p.peak.position.y - q.peak.position.y;
            if (q.band != p.band && dx * dx + dy * dy < r2) {
                dup = true;
                absorbed[a].push_back(i);
                break;
            }
        }
        if (!dup) {
            accepted.push_back(p);
            absorbed.emplace_back();
        }
    }
    // RESOLVED PAIRS: an accepted peak that lies between two peaks of a sharper band, merged into
    // it and at least one FWHM of that band apart, is the blend of the two: they replace it.
    std::vector<Peak> merged;
    for (std::size_t a = 0; a < accepted.size(); ++a) {
        const Peak& q = accepted[a].peak;
        const Peak* best1 = nullptr;
        const Peak* best2 = nullptr;
        double bestSig = 0;
        for (std::size_t u = 0; u < absorbed[a].size() && config.resolvedPairs; ++u)
            for (std::size_t v = u + 1; v < absorbed[a].size(); ++v) {
                const BandPeak& p1 = peaks[absorbed[a][u]];
                const BandPeak& p2 = peaks[absorbed[a][v]];
                if (p1.band != p2.band || psfSigma[p1.band] >= psfSigma[accepted[a].band]) continue;
                const double ex = p2.peak.position.x - p1.peak.position.x,
                             ey = p2.peak.position.y - p1.peak.position.y;
                const double d2 = ex * ex + ey * ey;
                if (d2 < std::pow(2.3548 * psfSigma[p1.band], 2)) continue;
                // q between them: its projection on the segment in the middle 60%, and within
                // a quarter of the separation of the line.
                const double qx = q.position.x - p1.peak.position.x,
                             qy = q.position.y - p1.peak.position.y;
                const double t = (qx * ex + qy * ey) / d2;
                const double perp2 = qx * qx + qy * qy - t * t * d2;
                if (t < 0.2 || t > 0.8 || perp2 > d2 / 16) continue;
                const double sig = std::min(p1.peak.significance, p2.peak.significance);
                if (sig > bestSig) {
                    bestSig = sig;
                    best1 = &p1.peak;
                    best2 = &p2.peak;
                }
            }
        if (best1) {
            merged.push_back(*best1);
            merged.push_back(*best2);
        } else {
            merged.push_back(q);
        }
    }
    std::vector<Footprint> out;
    for (SpanSet& spans : calib::connectedComponents(any.cview())) {
        std::vector<Peak> fpPeaks;
        for (const Peak& p : merged)
            if (spans.contains(p.position)) fpPeaks.push_back(p);
        if (fpPeaks.empty()) continue;  // cannot happen: every footprint came with its peaks
        out.emplace_back(std::move(spans), std::move(fpPeaks));
    }
    if (config.shoulderPeaks) {
        std::vector<ImageD> profiles;  // the same for every footprint of a band
        for (std::size_t b = 0; b < bands.size(); ++b)
            profiles.push_back(filteredPsfProfile(psfKernels.empty() ? nullptr : &psfKernels[b],
                                                  psfSigma[b], config.detection.nSigmaForKernel));
        for (Footprint& fp : out) {
            std::vector<Peak> extra;
            for (std::size_t b = 0; b < bands.size(); ++b)
                for (const Peak& p :
                     shoulderPeaks(fp, *bands[b], psfSigma[b], config,
                                   psfKernels.empty() ? nullptr : &psfKernels[b], &profiles[b]))
                    extra.push_back(p);
            std::stable_sort(extra.begin(), extra.end(), [](const Peak& a, const Peak& b) {
                if (a.significance != b.significance) return a.significance > b.significance;
                return a.position < b.position;
            });
            const double sep =
                config.shoulderMinSeparation * *std::min_element(psfSigma.begin(), psfSigma.end());
            const std::size_t nKnown = fp.peaks().size();
            for (const Peak& p : extra) {
                bool dup = false;
                for (std::size_t k = nKnown; k < fp.peaks().size() && !dup; ++k)
                    dup = std::hypot(p.position.x - fp.peaks()[k].position.x,
                                     p.position.y - fp.peaks()[k].position.y) < sep;
                if (!dup) fp.peaks().push_back(p);
            }
        }
    }
    return out;
}

namespace {

/// Separable Gaussian smoothing of `src` (on its own bbox) with σ; returns an image on `box`.
/// Each output pixel is Σ k·v / Σ k over the kernel taps inside `src` (horizontal pass, then
/// vertical), the taps summed in kernel order; rows are read through pointers (the hot path of
/// the residual-peak search and the PSF matching).
ImageD gaussianSmooth(ConstImageView<float> src, Box2I box, double sigma) {
    ImageD out(box, 0.0);
    const Box2I sb = src.bbox();
    if (sigma < 0.2) {
        for (int j = 0; j < box.height(); ++j) {
            const float* in = src.row(box.minY() + j - sb.minY()) + (box.minX() - sb.minX());
            double* o = out.row(j);
            for (int i = 0; i < box.width(); ++i) o[i] = in[i];
        }
        return out;
    }
    int r = static_cast<int>(std::ceil(4 * sigma));
    std::vector<double> k(2 * r + 1);
    for (int d = -r; d <= r; ++d) k[d + r] = std::exp(-0.5 * d * d / (sigma * sigma));
    Box2I wide = box.grownBy(r).clippedTo(sb);
    // Horizontal pass on the rows of `wide`, only in the columns the vertical pass reads.
    ImageD tmp(wide, 0.0);
    const int ww = wide.width();
    const int x0 = std::max(box.minX(), wide.minX()), x1 = std::min(box.maxX(), wide.maxX());
    // Columns c0..c1 of `wide` (x0..x1); tap d of column c reads column c + d, kept where
    // 0 <= c + d < ww, and the taps are added in kernel order. The weights' sums depend on the
    // column only.
    // The sums accumulate in tmp and out themselves (both start at 0).
    const int c0 = x0 - wide.minX(), c1 = x1 - wide.minX();
    std::vector<double> wsum(static_cast<std::size_t>(ww), 0.0);
    for (int d = -r; d <= r; ++d)
        for (int c = std::max(c0, -d); c <= std::min(c1, ww - 1 - d); ++c)
            wsum[static_cast<std::size_t>(c)] += k[d + r];
    for (int y = wide.minY(); y <= wide.maxY(); ++y) {
        // Row y of src from column wide.minX() on, and of tmp.
        const float* in = src.row(y - sb.minY()) + (wide.minX() - sb.minX());
        double* t = tmp.row(y - wide.minY());
        for (int d = -r; d <= r; ++d) {
            const double kd = k[d + r];
            for (int c = std::max(c0, -d); c <= std::min(c1, ww - 1 - d); ++c)
                t[c] += kd * in[c + d];
        }
        for (int c = c0; c <= c1; ++c) t[c] /= wsum[static_cast<std::size_t>(c)];
    }
    // Vertical pass, row by row: each pixel's taps are still added in kernel order.
    const int bw = box.width(), cx = box.minX() - wide.minX();
    for (int y = box.minY(); y <= box.maxY(); ++y) {
        double* o = out.row(y - box.minY());
        double w = 0;
        for (int d = std::max(-r, wide.minY() - y); d <= std::min(r, wide.maxY() - y); ++d) {
            const double kd = k[d + r];
            const double* t = tmp.row(y + d - wide.minY()) + cx;
            for (int i = 0; i < bw; ++i) o[i] += kd * t[i];
            w += kd;
        }
        for (int i = 0; i < bw; ++i) o[i] /= w;
    }
    return out;
}

double medianOf(std::vector<double> v) {
    if (v.empty()) return 0;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

/// Pixel visiting order and reference neighbours for the monotonicity projection from a peak.
struct MonotonicOrder {
    std::vector<int> order;  // pixel indices by increasing distance from the peak
    std::vector<int> ref;    // neighbour one step towards the peak (-1 for the peak itself)
};

MonotonicOrder monotonicOrder(Box2I box, Point2I c2) {
    // c2 = twice the centre: the centre is a pixel centre or a half-pixel point on each axis.
    // The central pixels (within half a pixel of the centre on both axes: 1, 2 or 4 of them) are
    // the peak; every other pixel refers to its neighbour one step towards the centre.
    const int w = box.width(), h = box.height();
    MonotonicOrder m;
    m.ref.assign(std::size_t(w) * h, -1);
    std::vector<double> dist(std::size_t(w) * h);
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) {
            const int dx = 2 * (box.minX() + i) - c2.x, dy = 2 * (box.minY() + j) - c2.y;
            dist[j * w + i] = std::hypot(dx, dy);
            const int sx =
                (std::abs(dx) > 1 && 2 * std::abs(dx) >= std::abs(dy)) ? (dx > 0) - (dx < 0) : 0;
            const int sy =
                (std::abs(dy) > 1 && 2 * std::abs(dy) >= std::abs(dx)) ? (dy > 0) - (dy < 0) : 0;
            if (sx == 0 && sy == 0) continue;  // a central pixel
            const int ri = i - sx, rj = j - sy;
            if (ri >= 0 && ri < w && rj >= 0 && rj < h) m.ref[j * w + i] = rj * w + ri;
        }
    m.order.resize(dist.size());
    std::iota(m.order.begin(), m.order.end(), 0);
    std::stable_sort(m.order.begin(), m.order.end(),
                     [&](int a, int b) { return dist[a] < dist[b]; });
    return m;
}

double maxEigen(const Eigen::MatrixXd& m) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m, Eigen::EigenvaluesOnly);
    return std::max(es.eigenvalues().maxCoeff(), 1e-300);
}

/// The mask bits that make a pixel unusable (NO_DATA, BAD), looked up once per loop.
MaskPixel unusableBits(const MaskedImage& mi) {
    MaskPixel bad = 0;
    for (const char* name : {"NO_DATA", "BAD"})
        if (mi.mask().planes().has(name)) bad |= mi.mask().planes().bit(name);
    return bad;
}

/// Whether a coadd pixel can be used: finite value, finite positive variance, none of the `bad`
/// bits (unusableBits; chip gaps and edges of coadds carry NaN variances).
bool usable(const MaskedImage& mi, Point2I p, MaskPixel bad) {
    const double v = mi.variance().at(p);
    return !(mi.mask().image().at(p) & bad) && std::isfinite(mi.image().at(p)) && v > 0 &&
           std::isfinite(v);
}

/// Parent fluxes: sums of image and variance over the footprint's usable pixels in each band.
void footprintSums(const Footprint& footprint, const std::vector<const MaskedImage*>& bands,
                   DeblendResult& res) {
    res.parentFlux.assign(bands.size(), 0.0);
    res.parentFluxErr.assign(bands.size(), 0.0);
    for (std::size_t b = 0; b < bands.size(); ++b) {
        const Box2I box = bands[b]->bbox();
        const MaskPixel bad = unusableBits(*bands[b]);
        double s = 0, v = 0;
        for (const Span& sp : footprint.spans().spans())
            for (int x = sp.x0; x <= sp.x1; ++x)
                if (box.contains(Point2I{x, sp.y}) && usable(*bands[b], {x, sp.y}, bad)) {
                    s += bands[b]->image().at({x, sp.y});
                    v += bands[b]->variance().at({x, sp.y});
                }
        res.parentFlux[b] = s;
        res.parentFluxErr[b] = std::sqrt(v);
    }
}

/// Windowed (Gaussian-weighted, SExtractor XWIN-like) centroid of the band sum over the
/// footprint, iterated from the peak with a window of σ = `sigma`; the peak itself if the
/// iteration leaves the peak's pixel neighbourhood (2 px) or the weights vanish.
Point2D windowedCentroid(const Footprint& fp, const std::vector<const MaskedImage*>& bands,
                         Point2I peak, double sigma) {
    Point2D c(peak);
    const int r = static_cast<int>(std::ceil(3 * sigma));
    for (int it = 0; it < 5; ++it) {
        double sw = 0, sx = 0, sy = 0;
        Point2I q = c.nearestPixel();
        for (int y = q.y - r; y <= q.y + r; ++y)
            for (int x = q.x - r; x <= q.x + r; ++x) {
                Point2I p{x, y};
                if (!fp.spans().contains(p)) continue;
                double v = 0;
                for (const MaskedImage* b : bands)
                    if (b->bbox().contains(p)) v += b->image().at(p);
                double d2 = (x - c.x) * (x - c.x) + (y - c.y) * (y - c.y);
                double w = std::exp(-0.5 * d2 / (sigma * sigma)) * v;
                sw += w;
                sx += w * x;
                sy += w * y;
            }
        if (!(sw > 0)) return Point2D(peak);
        Point2D next(sx / sw, sy / sw);
        if (std::hypot(next.x - peak.x, next.y - peak.y) > 2.0 || !std::isfinite(next.x) ||
            !std::isfinite(next.y))
            return Point2D(peak);
        c = next;
    }
    return c;
}

}  // namespace

namespace {

/// One source of a blend during the fit: its morphology S_k lives on its own box (a sub-box of
/// the parent's bbox), so that a sweep costs O(Σ_k |box_k|) instead of O(n_pix × n_sources).
struct Source {
    Point2I peak;
    /// Twice the symmetry centre (so a pixel centre or a half-pixel point on each axis): the
    /// morphology is symmetric about it and monotonic from it (CENTRES in deblender.h).
    Point2I c2;
    Box2I box;
    std::vector<int> pix;   ///< parent-bbox index of each box pixel (row-major in box)
    std::vector<double> s;  ///< morphology on box
    /// Sub-pixel offset of the centre from c2 / 2 (|δ| ≤ 1/4 px per axis): the template is the
    /// morphology shifted by δ (SUB-PIXEL CENTRES in deblender.h); zero without subpixelCentres.
    Point2D shift{0, 0};
    std::vector<double> m;           ///< the template on box: s shifted by `shift`
    std::vector<double> a;           ///< SED
    MonotonicOrder order;            ///< on box
    std::vector<std::uint8_t> inFp;  ///< footprint membership on box
    int peakIdx = 0;                 ///< index in box of the central pixel nearest the peak
};

/// (Re)build the box-dependent members of `src` for `box`, carrying the morphology over.
void setBox(Source& src, Box2I box, Box2I parent, const std::vector<std::uint8_t>& inFpParent) {
    std::vector<double> s(std::size_t(box.width()) * box.height(), 0.0);
    for (int y = box.minY(); y <= box.maxY(); ++y)
        for (int x = box.minX(); x <= box.maxX(); ++x)
            if (src.box.contains(Point2I{x, y}) && !src.s.empty())
                s[std::size_t(y - box.minY()) * box.width() + (x - box.minX())] =
                    src.s[std::size_t(y - src.box.minY()) * src.box.width() + (x - src.box.minX())];
    src.box = box;
    src.s = std::move(s);
    src.pix.resize(src.s.size());
    src.inFp.resize(src.s.size());
    for (int y = box.minY(); y <= box.maxY(); ++y)
        for (int x = box.minX(); x <= box.maxX(); ++x) {
            const std::size_t li = std::size_t(y - box.minY()) * box.width() + (x - box.minX());
            const int pi = (y - parent.minY()) * parent.width() + (x - parent.minX());
            src.pix[li] = pi;
            src.inFp[li] = inFpParent[pi];
        }
    src.order = monotonicOrder(box, src.c2);
    // The central pixel (|2x - c2.x| <= 1 on both axes) nearest the detection peak.
    auto central = [](int c2, int p) {
        return std::clamp(p, static_cast<int>(std::ceil(0.5 * (c2 - 1))),
                          static_cast<int>(std::floor(0.5 * (c2 + 1))));
    };
    const Point2I q{central(src.c2.x, src.peak.x), central(src.c2.y, src.peak.y)};
    src.peakIdx = (q.y - box.minY()) * box.width() + (q.x - box.minX());
}

void projectMonotonic(std::vector<double>& s, const MonotonicOrder& m,
                      const std::vector<std::uint8_t>& inFp) {
    for (int idx : m.order) {
        if (!inFp[idx]) {
            s[idx] = 0;
            continue;
        }
        s[idx] = std::max(0.0, s[idx]);
        const int r = m.ref[idx];
        if (r >= 0) s[idx] = std::min(s[idx], s[r]);
    }
}

/// Symmetry about the source's centre c (Melchior et al. 2018 §2.2.2; the SDSS deblender's
/// templates): each pixel and its mirror image p' = 2c − p take their mean (0 outside the box);
/// c is a pixel centre or a half-pixel point on each axis, so p' is a pixel. The mirror of a
/// monotonic morphology is monotonic about the same centre, so the mean is too.
void symmetrize(std::vector<double>& s, const Source& src) {
    const Box2I& b = src.box;
    const int w = b.width();
    for (int y = b.minY(); y <= b.maxY(); ++y)
        for (int x = b.minX(); x <= b.maxX(); ++x) {
            const Point2I m{src.c2.x - x, src.c2.y - y};
            const std::size_t i = std::size_t(y - b.minY()) * w + (x - b.minX());
            if (!b.contains(m)) {
                s[i] *= 0.5;
                continue;
            }
            const std::size_t j = std::size_t(m.y - b.minY()) * w + (m.x - b.minX());
            if (j <= i) continue;
            const double mean = 0.5 * (s[i] + s[j]);
            s[i] = s[j] = mean;
        }
}

/// Adaptive (elliptical-Gaussian-weighted) second moments of a non-negative image about a fixed
/// centre (Bernstein & Jarvis 2002): the weight's covariance W is iterated to W = 2 M, with M the
/// weighted second moments, whose fixed point is the covariance of a Gaussian image exactly.
/// `at(i)` gives pixel i's value and offset from the centre. Returns {Wxx, Wxy, Wyy}.
template <class F>
std::array<double, 3> adaptiveCovariance(std::size_t n, F at, double start) {
    std::array<double, 3> c{start * start, 0.0, start * start};
    for (int it = 0; it < 30; ++it) {
        const double det = c[0] * c[2] - c[1] * c[1];
        if (!(det > 0)) break;
        const double ixx = c[2] / det, ixy = -c[1] / det, iyy = c[0] / det;
        double s = 0, mxx = 0, mxy = 0, myy = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const auto [v, dx, dy] = at(i);
            if (!(v > 0)) continue;
            const double wv =
                v * std::exp(-0.5 * (ixx * dx * dx + 2 * ixy * dx * dy + iyy * dy * dy));
            s += wv;
            mxx += wv * dx * dx;
            mxy += wv * dx * dy;
            myy += wv * dy * dy;
        }
        if (!(s > 0)) break;
        const std::array<double, 3> next{2 * mxx / s, 2 * mxy / s, 2 * myy / s};
        const bool done =
            std::abs(next[0] - c[0]) + std::abs(next[2] - c[2]) < 1e-4 * (c[0] + c[2]);
        c = next;
        if (done) break;
    }
    return c;
}

/// Σ over `pixels` of the normalised Gaussian of covariance c (xx, xy, yy) centred on `centre`.
template <class Pixels>
double gaussianSum(const std::array<double, 3>& c, Point2D centre, const Pixels& pixels) {
    const double det = c[0] * c[2] - c[1] * c[1];
    if (!(det > 0)) return 1.0;
    const double ixx = c[2] / det, ixy = -c[1] / det, iyy = c[0] / det;
    double s = 0;
    for (const Point2I& q : pixels) {
        const double dx = q.x - centre.x, dy = q.y - centre.y;
        s += std::exp(-0.5 * (ixx * dx * dx + 2 * ixy * dx * dy + iyy * dy * dy));
    }
    return s / (2 * M_PI * std::sqrt(det));
}

/// Scale a morphology so that its maximum (at a central pixel, for a monotonic one) is 1, and
/// its SED inversely; a morphology that vanished restarts as a single central pixel.
void normalisePeak(Source& sk) {
    const double peak = *std::max_element(sk.s.begin(), sk.s.end());
    if (!(peak > 0)) {
        std::fill(sk.s.begin(), sk.s.end(), 0.0);
        sk.s[sk.peakIdx] = 1.0;
        return;
    }
    for (double& v : sk.s) v /= peak;
    for (double& v : sk.a) v *= peak;
}

/// Keys' cubic convolution kernel (a = −1/2; Keys 1981): interpolates exactly through samples,
/// reproduces quadratics, support |t| < 2.
double keysCubic(double t) {
    t = std::abs(t);
    if (t <= 1) return (1.5 * t - 2.5) * t * t + 1;
    if (t < 2) return ((-0.5 * t + 2.5) * t - 4) * t + 2;
    return 0;
}

/// One axis of shiftImage: `lines` lines of n samples (stride `step` along a line, `lineStep`
/// between lines) shifted by t: out(x) = Σ_i in(i) K(x − t − i), K = keysCubic (4 taps).
void shiftAxis(const std::vector<double>& in, std::vector<double>& out, int n, int lines,
               std::size_t step, std::size_t lineStep, double t) {
    std::array<double, 5> k{};  // weights of in(x + j), j = −2..2
    for (int j = -2; j <= 2; ++j) k[j + 2] = keysCubic(-t - j);
    for (int l = 0; l < lines; ++l)
        for (int x = 0; x < n; ++x) {
            double v = 0;
            for (int j = std::max(-2, -x); j <= std::min(2, n - 1 - x); ++j)
                v += k[j + 2] * in[l * lineStep + (x + j) * step];
            out[l * lineStep + x * step] = v;
        }
}

/// `in` (row-major on `box`) shifted by d (out(p) = in(p − d), cubic interpolation, zero
/// outside the box), separably. The operator's adjoint is the shift by −d (the kernel is even),
/// so shiftImage(·, −d) is the gradient's back-projection.
void shiftImage(const std::vector<double>& in, Box2I box, Point2D d, std::vector<double>& out) {
    const int w = box.width(), h = box.height();
    std::vector<double> tmp = in;
    if (d.x != 0) shiftAxis(in, tmp, w, h, 1, w, d.x);
    out = tmp;
    if (d.y != 0) shiftAxis(tmp, out, h, w, w, 1, d.y);
}

/// The source's template m = s shifted by its sub-pixel offset.
void updateTemplate(Source& sk) {
    if (sk.shift.x == 0 && sk.shift.y == 0)
        sk.m = sk.s;
    else
        shiftImage(sk.s, sk.box, sk.shift, sk.m);
}

/// The sub-pixel maximum of `img` (row-major on `box`) near pixel p: the local maximum is
/// searched from p uphill (at most `maxStep` pixels per axis from `anchor`), then a separable
/// parabola through its 3×3 neighbourhood gives the vertex (offsets clamped to ±1/2).
Point2D subpixelMaximum(const std::vector<double>& img, Box2I box, Point2I p, Point2I anchor,
                        int maxStep) {
    const int w = box.width();
    auto at = [&](int x, int y) {
        return img[std::size_t(y - box.minY()) * w + std::size_t(x - box.minX())];
    };
    const Box2I inner = box.grownBy(-1);
    if (!inner.contains(p)) return Point2D(p);
    for (int step = 0; step < 2 * maxStep; ++step) {
        Point2I best = p;
        for (int dy = -1; dy <= 1; ++dy)
            for (int dx = -1; dx <= 1; ++dx) {
                const Point2I q{p.x + dx, p.y + dy};
                if (inner.contains(q) && std::abs(q.x - anchor.x) <= maxStep &&
                    std::abs(q.y - anchor.y) <= maxStep && at(q.x, q.y) > at(best.x, best.y))
                    best = q;
            }
        if (best == p) break;
        p = best;
    }
    auto vertex = [](double m, double c, double q) {
        const double den = m - 2 * c + q;
        return den < 0 ? std::clamp(0.5 * (m - q) / den, -0.5, 0.5) : 0.0;
    };
    return {p.x + vertex(at(p.x - 1, p.y), at(p.x, p.y), at(p.x + 1, p.y)),
            p.y + vertex(at(p.x, p.y - 1), at(p.x, p.y), at(p.x, p.y + 1))};
}

/// Twice the centre c rounded (the half-pixel point nearest c) and the remaining offset
/// δ = c − c2 / 2 (zero unless `subpixel`).
std::pair<Point2I, Point2D> splitCentre(Point2D c, bool subpixel) {
    const Point2I c2{static_cast<int>(std::lround(2 * c.x)),
                     static_cast<int>(std::lround(2 * c.y))};
    return {c2, subpixel ? Point2D(c.x - 0.5 * c2.x, c.y - 0.5 * c2.y) : Point2D(0, 0)};
}

/// The PSF of band b after PSF-matching to the broadest band (kernel ⊗ Gaussian of σ = smooth),
/// normalised to unit sum, on a box centred on (0, 0); a Gaussian of the broadest σ without a
/// kernel.
ImageD matchedPsf(const ImageD* kernel, double psfSigma, double smooth) {
    ImageD out;
    if (!kernel || kernel->width() < 3 || kernel->height() < 3) {
        const double s = std::sqrt(psfSigma * psfSigma + smooth * smooth);
        const int r = static_cast<int>(std::ceil(6 * s));
        out = ImageD(Box2I({-r, -r}, Extent2I{2 * r + 1, 2 * r + 1}), 0.0);
        for (int y = -r; y <= r; ++y)
            for (int x = -r; x <= r; ++x)
                out.at({x, y}) = std::exp(-0.5 * (x * x + y * y) / (s * s));
    } else {
        const int rx = (kernel->width() - 1) / 2, ry = (kernel->height() - 1) / 2;
        const int g = smooth < 0.2 ? 0 : static_cast<int>(std::ceil(4 * smooth));
        Image<float> k(
            Box2I({-rx - g, -ry - g}, Extent2I{kernel->width() + 2 * g, kernel->height() + 2 * g}),
            0.f);
        for (int y = 0; y < kernel->height(); ++y)
            for (int x = 0; x < kernel->width(); ++x)
                k.at({x - rx, y - ry}) = static_cast<float>((*kernel)(x, y));
        out = gaussianSmooth(k.cview(), k.bbox(), smooth);
    }
    double sum = 0;
    for (double v : out.pixels()) sum += v;
    if (!(sum > 0)) throw badInput("matchedPsf: PSF kernel has no flux");
    for (double& v : out.pixels()) v /= sum;
    return out;
}

}  // namespace

namespace {

/// Band `band` on `box`, PSF-matched by a further Gaussian of σ = sm; unusable pixels (usable())
/// count as zero.
ImageD matchedBand(const MaskedImage& band, Box2I box, double sm) {
    const Box2I wide = box.grownBy(static_cast<int>(std::ceil(4 * sm)) + 1).clippedTo(band.bbox());
    Image<float> clean(wide, 0.f);
    const MaskPixel bad = unusableBits(band);
    for (int y = wide.minY(); y <= wide.maxY(); ++y)
        for (int x = wide.minX(); x <= wide.maxX(); ++x)
            if (usable(band, {x, y}, bad)) clean.at({x, y}) = band.image().at({x, y});
    return gaussianSmooth(clean.cview(), box, sm);
}

/// σ_T, the common PSF's σ after matching, and each band's matching σ (PSF MATCHING).
std::pair<double, std::vector<double>> matchingSigmas(const std::vector<double>& psfSigma,
                                                      double matchSmoothing) {
    const double sigmaMax = *std::max_element(psfSigma.begin(), psfSigma.end());
    const double sigmaT = std::hypot(sigmaMax, matchSmoothing);
    std::vector<double> sm;
    for (double s : psfSigma) sm.push_back(std::sqrt(std::max(0.0, sigmaT * sigmaT - s * s)));
    return {sigmaT, sm};
}

/// SUB-PIXEL CENTRES: the source's centre after one Gauss–Newton step on the loss. Moving the
/// template by Δ changes the model in band b by −A_b ∇m·Δ (∇m by central differences); Δ is the
/// weighted least-squares fit of that to the residuals `resid` over the source's core (within
/// 2 σ_T of its centre, where a neighbour ≥ 1 FWHM away holds little light), clamped to ±1/2 px
/// per axis, and the centre to ±2 px of the detection peak. The current centre when the system
/// is singular (a vanished template).
Point2D centreStep(const Source& sk, const std::vector<std::vector<double>>& resid,
                   const std::vector<std::vector<double>>& mask, const std::vector<double>& weight,
                   double sigmaT) {
    const Point2D c0{0.5 * sk.c2.x + sk.shift.x, 0.5 * sk.c2.y + sk.shift.y};
    const Box2I in = sk.box.grownBy(-1);
    const int bw = sk.box.width();
    const double r2max = 4 * sigmaT * sigmaT;
    double axx = 0, axy = 0, ayy = 0, bx = 0, by = 0;
    for (int y = in.minY(); y <= in.maxY(); ++y)
        for (int x = in.minX(); x <= in.maxX(); ++x) {
            if (std::pow(x - c0.x, 2) + std::pow(y - c0.y, 2) > r2max) continue;
            const std::size_t li = std::size_t(y - sk.box.minY()) * bw + (x - sk.box.minX());
            const double gx = 0.5 * (sk.m[li + 1] - sk.m[li - 1]);
            const double gy = 0.5 * (sk.m[li + bw] - sk.m[li - bw]);
            const int pi = sk.pix[li];
            for (std::size_t b = 0; b < weight.size(); ++b) {
                if (!mask[b][pi]) continue;
                const double wa = weight[b] * sk.a[b];
                axx += wa * sk.a[b] * gx * gx;
                axy += wa * sk.a[b] * gx * gy;
                ayy += wa * sk.a[b] * gy * gy;
                bx += wa * gx * resid[b][pi];
                by += wa * gy * resid[b][pi];
            }
        }
    const double det = axx * ayy - axy * axy;
    if (!(det > 0)) return c0;
    // Normal equations of r ≈ J Δ with J = −A ∇m: Δ = −(Σ w A² ∇m ∇mᵀ)⁻¹ Σ w A ∇m r.
    const double dx = std::clamp(-(ayy * bx - axy * by) / det, -0.5, 0.5);
    const double dy = std::clamp(-(axx * by - axy * bx) / det, -0.5, 0.5);
    return {std::clamp(c0.x + dx, sk.peak.x - 2.0, sk.peak.x + 2.0),
            std::clamp(c0.y + dy, sk.peak.y - 2.0, sk.peak.y + 2.0)};
}

/// TEMPLATE FLUX ERROR (deblender.h): the weight of the split variance Σ f (1 − f) V against the
/// own variance Σ f² V, calibrated on simulated patches (docs/deblend.md).
constexpr double kSplitNoiseGain = 6.0;

DeblendResult deblendImpl(const Footprint& footprint, const std::vector<const MaskedImage*>& bands,
                          const std::vector<double>& psfSigma, const DeblendConfig& config,
                          const std::vector<ImageD>& psfKernels, bool fitSingle) {
    config.validate();
    const std::size_t nb = bands.size();
    if (nb == 0 || psfSigma.size() != nb)
        throw badInput("deblendFootprint: need one PSF width per band");
    const Box2I box = footprint.bbox();
    const int w = box.width(), h = box.height();
    const std::size_t npix = std::size_t(w) * h;
    std::vector<std::uint8_t> inFp(npix, 0);
    for (const Span& s : footprint.spans().spans())
        for (int x = s.x0; x <= s.x1; ++x)
            inFp[std::size_t(s.y - box.minY()) * w + (x - box.minX())] = 1;

    DeblendResult res;
    for (std::size_t b = 0; b < nb; ++b)
        if (!bands[b]->bbox().contains(box))
            throw badInput("deblendFootprint: footprint outside the band image");
    footprintSums(footprint, bands, res);
    const std::size_t nk = footprint.peaks().size();
    if (nk == 0 || (nk == 1 && !fitSingle)) return res;  // isolated: the parent is the object
    if (static_cast<int>(nk) > config.maxPeaks) {
        res.flags.push_back("too_many_peaks");
        return res;
    }
    if (footprint.area() > config.maxPixels) {
        res.flags.push_back("too_large");
        return res;
    }

    // PSF-match every band to the broadest one, smoothed further by config.matchSmoothing
    // (PSF MATCHING in deblender.h). Unusable pixels (usable()) are zero in the
    // smoothed data and out of the loss.
    const auto matching = matchingSigmas(psfSigma, config.matchSmoothing);
    const double sigmaT = matching.first;
    const std::vector<double>& smooth = matching.second;
    std::vector<std::vector<double>> data(nb), native(nb), nativeVar(nb), mask(nb);
    std::vector<double> weight(nb);
    for (std::size_t b = 0; b < nb; ++b) {
        ImageD d = matchedBand(*bands[b], box, smooth[b]);
        data[b].assign(d.data(), d.data() + npix);
        native[b].assign(npix, 0.0);
        nativeVar[b].assign(npix, 0.0);
        mask[b].assign(npix, 0.0);
        std::vector<double> vars;
        const MaskPixel bad = unusableBits(*bands[b]);
        for (int j = 0; j < h; ++j)
            for (int i = 0; i < w; ++i) {
                const Point2I p{box.minX() + i, box.minY() + j};
                if (!inFp[j * w + i] || !usable(*bands[b], p, bad)) continue;
                mask[b][j * w + i] = 1;
                native[b][j * w + i] = bands[b]->image().at(p);
                nativeVar[b][j * w + i] = bands[b]->variance().at(p);
                vars.push_back(bands[b]->variance().at(p));
            }
        const double mv = medianOf(vars);
        weight[b] = mv > 0 ? 1.0 / mv : 1.0;
    }

    // Initialisation: the S/N-summed detection image split among the peaks by nearest peak, made
    // monotonic; SED from the matched images at the peak. Each source's box is the bbox of its
    // nearest-peak cell in the footprint, grown by 2 σ_PSF (it grows during the fit when the
    // morphology reaches its edge).
    std::vector<double> det(npix, 0.0);
    for (std::size_t b = 0; b < nb; ++b)
        for (std::size_t i = 0; i < npix; ++i) det[i] += std::sqrt(weight[b]) * data[b][i];
    std::vector<int> owner(npix, 0);
    std::vector<Box2I> cell(nk);
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) {
            double best = 1e300;
            int o = 0;
            for (std::size_t k = 0; k < nk; ++k) {
                const Point2I p = footprint.peaks()[k].position;
                const double d2 =
                    std::pow(box.minX() + i - p.x, 2) + std::pow(box.minY() + j - p.y, 2);
                if (d2 < best) {
                    best = d2;
                    o = static_cast<int>(k);
                }
            }
            owner[j * w + i] = o;
            if (inFp[j * w + i])
                cell[o] = cell[o].expandedToInclude(
                    Box2I(Point2I{box.minX() + i, box.minY() + j}, Extent2I{1, 1}));
        }
    const int margin = static_cast<int>(std::ceil(2 * sigmaT)) + 1;
    std::vector<Source> src(nk);
    for (std::size_t k = 0; k < nk; ++k) {
        Source& sk = src[k];
        sk.peak = footprint.peaks()[k].position;
        if (config.symmetric)
            std::tie(sk.c2, sk.shift) =
                splitCentre(subpixelMaximum(det, box, sk.peak, sk.peak, 1), config.subpixelCentres);
        else
            sk.c2 = Point2I{2 * sk.peak.x, 2 * sk.peak.y};
        cell[k] = cell[k].expandedToInclude(Box2I(sk.peak, Extent2I{1, 1}));
        setBox(sk, cell[k].grownBy(margin).clippedTo(box), box, inFp);
        for (std::size_t li = 0; li < sk.s.size(); ++li)
            sk.s[li] =
                owner[sk.pix[li]] == static_cast<int>(k) ? std::max(0.0, det[sk.pix[li]]) : 0;
        projectMonotonic(sk.s, sk.order, sk.inFp);
        if (config.symmetric) {
            symmetrize(sk.s, sk);
            projectMonotonic(sk.s, sk.order, sk.inFp);
        }
        sk.a.assign(nb, 1.0);
        normalisePeak(sk);
        const int pp = sk.pix[sk.peakIdx];
        for (std::size_t b = 0; b < nb; ++b)
            sk.a[b] = std::max(data[b][pp], 1e-6 / std::sqrt(weight[b]));
        updateTemplate(sk);
    }

    // Residuals R_b = D_b − Σ_k A_kb S_k (used only where mask_b = 1).
    std::vector<std::vector<double>> resid(nb);
    auto computeResiduals = [&]() {
        for (std::size_t b = 0; b < nb; ++b) {
            resid[b] = data[b];
            for (const Source& sk : src)
                for (std::size_t li = 0; li < sk.m.size(); ++li)
                    resid[b][sk.pix[li]] -= sk.a[b] * sk.m[li];
        }
    };
    auto loss = [&]() {
        double l = 0;
        for (std::size_t b = 0; b < nb; ++b) {
            double q = 0;
            for (std::size_t i = 0; i < npix; ++i) q += mask[b][i] * resid[b][i] * resid[b][i];
            l += 0.5 * weight[b] * q;
        }
        return l;
    };
    computeResiduals();
    double last = loss();
    int quiet = 0;
    res.converged = false;
    std::vector<double> sOld;
    Eigen::MatrixXd sts(nk, nk), h2(nk, nk);
    for (int it = 1; it <= config.maxIterations; ++it) {
        res.iterations = it;
        // SED block: projected gradient steps with step 1/λ_max(SᵀS) (exact Lipschitz constant;
        // SᵀS over the footprint, from the overlaps of the sources' boxes).
        for (std::size_t j = 0; j < nk; ++j)
            for (std::size_t k = j; k < nk; ++k) {
                const Box2I ov = src[j].box.clippedTo(src[k].box);
                double v = 0;
                for (int y = ov.minY(); y <= ov.maxY(); ++y) {
                    const double* sj =
                        &src[j].m[std::size_t(y - src[j].box.minY()) * src[j].box.width() +
                                  (ov.minX() - src[j].box.minX())];
                    const double* sk =
                        &src[k].m[std::size_t(y - src[k].box.minY()) * src[k].box.width() +
                                  (ov.minX() - src[k].box.minX())];
                    const std::uint8_t* f =
                        &inFp[std::size_t(y - box.minY()) * w + (ov.minX() - box.minX())];
                    for (int i = 0; i < ov.width(); ++i) v += f[i] * sj[i] * sk[i];
                }
                sts(j, k) = sts(k, j) = v;
            }
        const double la = maxEigen(sts);
        for (int inner = 0; inner < 3; ++inner) {
            if (inner > 0) computeResiduals();
            for (Source& sk : src)
                for (std::size_t b = 0; b < nb; ++b) {
                    double g = 0;
                    for (std::size_t li = 0; li < sk.m.size(); ++li)
                        g += sk.m[li] * mask[b][sk.pix[li]] * resid[b][sk.pix[li]];
                    sk.a[b] = std::max(0.0, sk.a[b] + g / la);
                }
        }
        computeResiduals();
        // Morphology block: gradient step with step 1/λ_max(Σ_b w_b A_bᵀ A_b), then the proximal
        // operator (positivity, footprint, monotonicity) and the peak normalised to 1.
        h2.setZero();
        for (std::size_t b = 0; b < nb; ++b)
            for (std::size_t j = 0; j < nk; ++j)
                for (std::size_t k = 0; k < nk; ++k)
                    h2(j, k) += weight[b] * src[j].a[b] * src[k].a[b];
        const double ls = maxEigen(h2);
        std::vector<double> grad, back;
        for (Source& sk : src) {
            // The gradient with respect to the template, back-projected through the shift (its
            // adjoint: the shift by −δ).
            grad.assign(sk.s.size(), 0.0);
            for (std::size_t b = 0; b < nb; ++b) {
                const double c = weight[b] * sk.a[b] / ls;
                if (c == 0) continue;
                for (std::size_t li = 0; li < sk.s.size(); ++li)
                    grad[li] += c * mask[b][sk.pix[li]] * resid[b][sk.pix[li]];
            }
            if (sk.shift.x != 0 || sk.shift.y != 0) {
                shiftImage(grad, sk.box, Point2D(-sk.shift.x, -sk.shift.y), back);
                grad.swap(back);
            }
            for (std::size_t li = 0; li < sk.s.size(); ++li) sk.s[li] += grad[li];
        }
        for (Source& sk : src) {
            projectMonotonic(sk.s, sk.order, sk.inFp);
            if (config.symmetric) {
                symmetrize(sk.s, sk);
                projectMonotonic(sk.s, sk.order, sk.inFp);
            }
            normalisePeak(sk);
            updateTemplate(sk);
        }
        // Every 10 sweeps: boxes whose morphology reaches an edge with light above 0.1σ per pixel
        // in some band grow on that side (by a quarter of their size, at least 4 px); residuals
        // are recomputed from scratch (no drift of the running updates).
        bool grown = false;
        // CENTRES: every 5 sweeps up to the 30th, each symmetric source's centre moves: with
        // sub-pixel centres by a Gauss–Newton step on the loss (centreStep), otherwise to the
        // half-pixel maximum of the S/N-summed data minus its neighbours' models (within 2 px of
        // its detection peak); the morphology is re-projected about the new centre.
        if (config.symmetric && it % 5 == 0 && it <= 30) {
            computeResiduals();
            std::vector<double> own(config.subpixelCentres ? 0 : npix);
            for (std::size_t k = 0; k < nk; ++k) {
                Source& sk = src[k];
                Point2D centre;
                if (config.subpixelCentres) {
                    centre = centreStep(sk, resid, mask, weight, sigmaT);
                } else {
                    const Box2I win = Box2I(sk.peak, Extent2I{1, 1}).grownBy(4).clippedTo(box);
                    for (int y = win.minY(); y <= win.maxY(); ++y)
                        for (int x = win.minX(); x <= win.maxX(); ++x) {
                            const std::size_t i =
                                std::size_t(y - box.minY()) * w + (x - box.minX());
                            double v = 0;
                            for (std::size_t b = 0; b < nb; ++b) {
                                double m = resid[b][i];
                                if (sk.box.contains(Point2I{x, y}))
                                    m += sk.a[b] *
                                         sk.m[std::size_t(y - sk.box.minY()) * sk.box.width() +
                                              (x - sk.box.minX())];
                                v += std::sqrt(weight[b]) * m;
                            }
                            own[i] = v;
                        }
                    const Point2I cur{static_cast<int>(std::lround(0.5 * sk.c2.x)),
                                      static_cast<int>(std::lround(0.5 * sk.c2.y))};
                    centre = subpixelMaximum(own, box, cur, sk.peak, 2);
                }
                const auto [c2, shift] = splitCentre(centre, config.subpixelCentres);
                if (!sk.box.grownBy(-1).contains(Point2I{c2.x / 2, c2.y / 2})) continue;
                if (c2 == sk.c2) {
                    sk.shift = shift;
                    updateTemplate(sk);
                    continue;
                }
                sk.c2 = c2;
                sk.shift = shift;
                setBox(sk, sk.box, box, inFp);
                symmetrize(sk.s, sk);
                projectMonotonic(sk.s, sk.order, sk.inFp);
                normalisePeak(sk);
                updateTemplate(sk);
                grown = true;
            }
        }
        if (it % 10 == 0) {
            for (Source& sk : src) {
                double amp = 0;
                for (std::size_t b = 0; b < nb; ++b)
                    amp = std::max(amp, sk.a[b] * std::sqrt(weight[b]));
                const Box2I& bb = sk.box;
                const int bw = bb.width(), bh = bb.height();
                auto edgeMax = [&](int x0, int y0, int x1, int y1) {
                    double m = 0;
                    for (int y = y0; y <= y1; ++y)
                        for (int x = x0; x <= x1; ++x)
                            m = std::max(m,
                                         sk.s[std::size_t(y - bb.minY()) * bw + (x - bb.minX())]);
                    return m * amp;
                };
                const int gx = std::max(4, bw / 4), gy = std::max(4, bh / 4);
                int x0 = bb.minX(), y0 = bb.minY(), x1 = bb.maxX(), y1 = bb.maxY();
                if (x0 > box.minX() && edgeMax(x0, y0, x0, y1) > 0.1) x0 -= gx;
                if (x1 < box.maxX() && edgeMax(x1, y0, x1, y1) > 0.1) x1 += gx;
                if (y0 > box.minY() &&
                    edgeMax(x0 < bb.minX() ? bb.minX() : x0, y0, bb.maxX(), y0) > 0.1)
                    y0 -= gy;
                if (y1 < box.maxY() && edgeMax(bb.minX(), y1, bb.maxX(), y1) > 0.1) y1 += gy;
                const Box2I nbb = Box2I::fromCorners({x0, y0}, {x1, y1}).clippedTo(box);
                if (!(nbb == bb)) {
                    setBox(sk, nbb, box, inFp);
                    updateTemplate(sk);
                    grown = true;
                }
            }
        }
        computeResiduals();
        const double l = loss();
        const double rel = std::abs(last - l) / std::max(l, 1e-300);
        last = l;
        quiet = rel < config.relativeTolerance && !grown ? quiet + 1 : 0;
        if (quiet >= 2 && it >= config.minIterations) {
            res.converged = true;
            break;
        }
    }
    if (!res.converged) res.flags.push_back("not_converged");
    // From here on each source's morphology is its template (the shifted morphology, whose cubic
    // interpolation may ring slightly below zero at sharp edges: clipped), peak 1.
    for (Source& sk : src) {
        for (std::size_t li = 0; li < sk.s.size(); ++li) sk.s[li] = std::max(0.0, sk.m[li]);
        normalisePeak(sk);
    }

    // The model T_b = Σ_k A_kb S_k, for the re-apportioning weights.
    std::vector<std::vector<double>> model(nb, std::vector<double>(npix, 0.0));
    for (std::size_t b = 0; b < nb; ++b)
        for (const Source& sk : src)
            for (std::size_t li = 0; li < sk.s.size(); ++li)
                model[b][sk.pix[li]] += sk.a[b] * sk.s[li];

    // Re-apportion the observed pixels with the templates T_kb = A_kb S_k.
    res.deblended = true;
    res.children.resize(nk);
    // BLENDEDNESS (deblender.h): 1 − ⟨T_k, T_k⟩ / ⟨T_k, M⟩ over the usable pixels, the bands
    // weighted as in the fit.
    for (std::size_t k = 0; k < nk; ++k) {
        const Source& sk = src[k];
        double self = 0, all = 0;
        for (std::size_t b = 0; b < nb; ++b)
            for (std::size_t li = 0; li < sk.s.size(); ++li) {
                const int p = sk.pix[li];
                if (!mask[b][p]) continue;
                const double t = sk.a[b] * sk.s[li];
                self += weight[b] * t * t;
                all += weight[b] * t * model[b][p];
            }
        res.children[k].blendedness = all > 0 ? std::clamp(1.0 - self / all, 0.0, 1.0) : 0.0;
    }
    for (std::size_t k = 0; k < nk; ++k) {
        const Source& sk = src[k];
        Child& c = res.children[k];
        c.peak = footprint.peaks()[k];
        c.sed = sk.a;
        c.flux.assign(nb, 0.0);
        c.fluxErr.assign(nb, 0.0);
        c.modelFlux.assign(nb, 0.0);
        c.morphology = Image<float>(sk.box, 0.f);
        double st = 0;
        for (std::size_t li = 0; li < sk.s.size(); ++li) {
            c.morphology.data()[li] = static_cast<float>(sk.s[li]);
            st += sk.s[li];
        }
        // Windowed centroid of the template about its peak (window σ = the matched PSF's): the
        // plain first moment is pulled towards neighbours by the monotonic wings that extend
        // under them. (Windowed centroids of the re-apportioned or neighbour-subtracted data
        // were tried: on the simulated patch they drift towards bright neighbours' residuals.)
        Point2D cen(c.peak.position);
        const int bw = sk.box.width();
        for (int it = 0; it < 5; ++it) {
            double sw = 0, sx = 0, sy = 0;
            for (std::size_t li = 0; li < sk.s.size(); ++li) {
                if (sk.s[li] <= 0) continue;
                const double x = sk.box.minX() + int(li % bw), y = sk.box.minY() + int(li / bw);
                const double d2 = (x - cen.x) * (x - cen.x) + (y - cen.y) * (y - cen.y);
                const double wt = sk.s[li] * std::exp(-0.5 * d2 / (sigmaT * sigmaT));
                sw += wt;
                sx += wt * x;
                sy += wt * y;
            }
            if (!(sw > 0)) break;
            cen = Point2D(sx / sw, sy / sw);
        }
        c.centroid = cen;
        for (std::size_t b = 0; b < nb; ++b) {
            c.modelFlux[b] = sk.a[b] * st;
            double f = 0, v = 0, split = 0;
            for (std::size_t li = 0; li < sk.s.size(); ++li) {
                const int p = sk.pix[li];
                if (!mask[b][p] || !(model[b][p] > 0)) continue;
                const double frac = sk.a[b] * sk.s[li] / model[b][p];
                f += frac * native[b][p];
                v += frac * frac * nativeVar[b][p];
                split += frac * (1 - frac) * nativeVar[b][p];
            }
            c.flux[b] = f;
            // Variance (TEMPLATE FLUX ERROR in deblender.h): until the pixels no template covers
            // are added below, also the template flux's before its aperture correction.
            c.fluxErr[b] = v + kSplitNoiseGain * std::max(0.0, split);
        }
    }
    // Template fluxes (TEMPLATE FLUX in deblender.h). Each template's adaptive covariance about
    // its centre, for the size-aware aperture correction.
    std::vector<std::array<double, 3>> covObj(nk);
    for (std::size_t k = 0; k < nk; ++k) {
        const Source& sk = src[k];
        const int bw = sk.box.width();
        const double cx = 0.5 * sk.c2.x, cy = 0.5 * sk.c2.y;
        covObj[k] = adaptiveCovariance(
            sk.s.size(),
            [&](std::size_t li) {
                return std::tuple<double, double, double>{
                    sk.s[li], sk.box.minX() + int(li % bw) - cx, sk.box.minY() + int(li / bw) - cy};
            },
            sigmaT);
    }
    for (std::size_t b = 0; b < nb; ++b) {
        const ImageD psfT =
            matchedPsf(psfKernels.empty() ? nullptr : &psfKernels[b], psfSigma[b], smooth[b]);
        const Box2I pbox = psfT.bbox();
        const std::array<double, 3> covPsf = adaptiveCovariance(
            psfT.pixels().size(),
            [&](std::size_t i) {
                return std::tuple<double, double, double>{psfT.pixels()[i],
                                                          pbox.minX() + int(i % pbox.width()),
                                                          pbox.minY() + int(i / pbox.width())};
            },
            sigmaT);
        for (std::size_t k = 0; k < nk; ++k) {
            const Source& sk = src[k];
            Child& c = res.children[k];
            c.templateFlux.resize(nb);
            c.templateFluxErr.resize(nb);
            double st = 0;
            for (std::size_t li = 0; li < sk.s.size(); ++li)
                if (mask[b][sk.pix[li]]) st += sk.s[li];
            // φ: the matched PSF at the source's centre, summed over the pixels its template can
            // occupy (usable, in its box and the footprint, and — when symmetric — with the
            // mirror image in them too: the symmetry projection empties the others).
            std::vector<std::uint8_t> allowed(sk.s.size(), 0);
            const int bw = sk.box.width();
            for (std::size_t li = 0; li < sk.s.size(); ++li) {
                if (!mask[b][sk.pix[li]] || !sk.inFp[li]) continue;
                if (config.symmetric) {
                    const Point2I q{sk.box.minX() + int(li % bw), sk.box.minY() + int(li / bw)};
                    const Point2I m{sk.c2.x - q.x, sk.c2.y - q.y};
                    if (!sk.box.contains(m) ||
                        !sk.inFp[std::size_t(m.y - sk.box.minY()) * bw + (m.x - sk.box.minX())])
                        continue;
                }
                allowed[li] = 1;
            }
            double phi = 0;
            const Box2I pb = psfT.bbox();
            const int x0 = sk.c2.x >> 1, y0 = sk.c2.y >> 1;  // floor(c2 / 2)
            const int nx = (sk.c2.x & 1) + 1, ny = (sk.c2.y & 1) + 1;
            for (int sy = 0; sy < ny; ++sy)
                for (int sx = 0; sx < nx; ++sx)
                    for (int y = pb.minY(); y <= pb.maxY(); ++y)
                        for (int x = pb.minX(); x <= pb.maxX(); ++x) {
                            const Point2I q{x0 + sx + x, y0 + sy + y};
                            if (!sk.box.contains(q)) continue;
                            if (allowed[std::size_t(q.y - sk.box.minY()) * bw +
                                        (q.x - sk.box.minX())])
                                phi += psfT.at({x, y}) / (nx * ny);
                        }
            // Size: an extended child loses more light beyond that region than a point source.
            // Its intrinsic (PSF-deconvolved) covariance C_g = C_template − C_PSF, both adaptive,
            // widens the matched PSF; φ scales by the ratio of the Gaussians' sums over the
            // region (1 for a point source).
            {
                std::array<double, 3> cg{covObj[k][0] - covPsf[0], covObj[k][1] - covPsf[1],
                                         covObj[k][2] - covPsf[2]};
                // Project onto positive semi-definite matrices.
                const double tr = cg[0] + cg[2], dt = cg[0] * cg[2] - cg[1] * cg[1];
                const double disc = std::sqrt(std::max(0.0, 0.25 * tr * tr - dt));
                const double l1 = std::max(0.0, 0.5 * tr + disc),
                             l2 = std::max(0.0, 0.5 * tr - disc);
                double ux = 1, uy = 0;  // eigenvector of l1
                if (std::abs(cg[1]) > 1e-12) {
                    ux = l1 - cg[2];
                    uy = cg[1];
                    const double n = std::hypot(ux, uy);
                    ux /= n;
                    uy /= n;
                } else if (cg[2] > cg[0]) {
                    ux = 0;
                    uy = 1;
                }
                cg = {l1 * ux * ux + l2 * uy * uy, (l1 - l2) * ux * uy,
                      l1 * uy * uy + l2 * ux * ux};
                if (cg[0] + cg[2] > 1e-6) {
                    std::vector<Point2I> pts;
                    for (std::size_t li = 0; li < sk.s.size(); ++li)
                        if (allowed[li])
                            pts.push_back(
                                {sk.box.minX() + int(li % bw), sk.box.minY() + int(li / bw)});
                    const Point2D cen(0.5 * sk.c2.x, 0.5 * sk.c2.y);
                    const std::array<double, 3> wide{covPsf[0] + cg[0], covPsf[1] + cg[1],
                                                     covPsf[2] + cg[2]};
                    const double p0 = gaussianSum(covPsf, cen, pts);
                    if (p0 > 0) phi *= gaussianSum(wide, cen, pts) / p0;
                }
            }
            phi = std::clamp(phi, 0.05, 1.0);
            c.templateFlux[b] = sk.a[b] * st / phi;
            c.templateFluxErr[b] = std::sqrt(c.fluxErr[b]) / phi;  // still the variance
        }
    }
    // Footprint pixels no template covers go to the nearest peak.
    for (std::size_t b = 0; b < nb; ++b)
        for (std::size_t i = 0; i < npix; ++i)
            if (mask[b][i] && !(model[b][i] > 0)) {
                res.children[owner[i]].flux[b] += native[b][i];
                res.children[owner[i]].fluxErr[b] += nativeVar[b][i];
            }
    for (Child& c : res.children)
        for (double& v : c.fluxErr) v = std::sqrt(v);
    // A fit that went non-finite (non-finite input pixels) is discarded: the parent stays.
    bool finite = true;
    for (const Child& c : res.children)
        for (std::size_t b = 0; b < nb; ++b)
            finite = finite && std::isfinite(c.flux[b]) && std::isfinite(c.sed[b]);
    if (!finite) {
        res.children.clear();
        res.deblended = false;
        res.flags.push_back("deblend_failed");
    }
    return res;
}

}  // namespace

DeblendResult deblendFootprint(const Footprint& footprint,
                               const std::vector<const MaskedImage*>& bands,
                               const std::vector<double>& psfSigma, const DeblendConfig& config,
                               const std::vector<ImageD>& psfKernels) {
    return deblendImpl(footprint, bands, psfSigma, config, psfKernels, false);
}

DeblendResult fitFootprint(const Footprint& footprint, const std::vector<const MaskedImage*>& bands,
                           const std::vector<double>& psfSigma, const DeblendConfig& config,
                           const std::vector<ImageD>& psfKernels) {
    return deblendImpl(footprint, bands, psfSigma, config, psfKernels, true);
}

namespace {

/// RESIDUAL PEAKS' candidates (residualPeaks), or — with `near` — the residual's local maxima
/// passing every test but the separation from the footprint's peaks within `nearRadius` of
/// `*near` (SPURIOUS PEAKS: is the light at a removed peak explained?).
std::vector<Peak> residualCandidates(const Footprint& footprint, const DeblendResult& result,
                                     const std::vector<const MaskedImage*>& bands,
                                     const std::vector<double>& psfSigma,
                                     const DeblendConfig& config,
                                     const std::vector<ImageD>& psfKernels, const Point2I* near,
                                     double nearRadius) {
    std::vector<Peak> out;
    if (!result.deblended || result.children.empty()) return out;
    // At a removed peak, a model symmetric about a neighbour's centre still holds about half
    // of a real object's light (the mean of its pixels and their mirror images): half the
    // threshold and half the fraction.
    const double half = near ? 0.5 : 1.0;
    const double minFraction = half * config.residualMinFraction;
    const double threshold = half * config.residualThreshold;
    const std::size_t nb = bands.size();
    if (nb == 0 || psfSigma.size() != nb)
        throw badInput("residualPeaks: need one PSF width per band");
    const Box2I box = footprint.bbox();
    const auto matching = matchingSigmas(psfSigma, config.matchSmoothing);
    const double sigmaT = matching.first;
    const double sep2 = std::pow(config.residualMinSeparation * sigmaT, 2);
    auto farFrom = [&](const std::vector<Peak>& peaks, Point2I p) {
        for (const Peak& q : peaks)
            if (std::pow(q.position.x - p.x, 2) + std::pow(q.position.y - p.y, 2) < sep2)
                return false;
        return true;
    };
    // Per band, on the parent bbox: the filtered residual's S/N, and inverse-variance weighted
    // sums of the filtered residual, data and point-source prediction (for the band-combined
    // fraction and PSF tests).
    const std::size_t npix = std::size_t(box.width()) * box.height();
    std::vector<double> chi2(npix, 0.0), wr(npix, 0.0), wd(npix, 0.0), wp(npix, 0.0);
    auto idx = [&](Point2I p) {
        return std::size_t(p.y - box.minY()) * box.width() + std::size_t(p.x - box.minX());
    };
    for (std::size_t b = 0; b < nb; ++b) {
        const double sm = matching.second[b];
        const ImageD d = matchedBand(*bands[b], box, sm);
        // Residual, data and native variance on the footprint's usable pixels.
        Image<float> rimg(box, 0.f), dimg(box, 0.f), vimg(box, 0.f);
        Image<std::uint8_t> use(box, 0);
        ImageD model(box, 0.0);
        for (const Child& c : result.children) {
            const Box2I cb = c.morphology.bbox().clippedTo(box);
            for (int y = cb.minY(); y <= cb.maxY(); ++y)
                for (int x = cb.minX(); x <= cb.maxX(); ++x)
                    model.at({x, y}) += c.sed[b] * c.morphology.at({x, y});
        }
        const MaskPixel bad = unusableBits(*bands[b]);
        for (const Span& sp : footprint.spans().spans())
            for (int x = sp.x0; x <= sp.x1; ++x) {
                const Point2I p{x, sp.y};
                if (!usable(*bands[b], p, bad)) continue;
                use.at(p) = 1;
                rimg.at(p) = static_cast<float>(d.at(p) - model.at(p));
                dimg.at(p) = static_cast<float>(d.at(p));
                vimg.at(p) = bands[b]->variance().at(p);
            }
        // CENTRING DIPOLES: a morphology is symmetric about a half-pixel point, up to 1/4 px
        // from the object's centre, so a bright child leaves a dipole ≈ δ·∇M_k (at S/N 600 and
        // 5 px from a galaxy's centre, 10% of the data and 10σ). Each child's δ (clamped to
        // ±1/4 px per axis, the half-pixel grid's largest offset) is fitted to the residual over
        // its core (within 2 σ_T of its centre, where a neighbour ≥ 1 FWHM away holds little light)
        // and δ·∇M_k removed everywhere.
        for (const Child& c : result.children) {
            const Box2I cb = c.morphology.bbox().clippedTo(box.grownBy(-1));
            if (cb.empty()) continue;
            auto grad = [&](Point2I p) {
                auto m = [&](int x, int y) {
                    const Point2I q{x, y};
                    return c.morphology.bbox().contains(q) ? c.sed[b] * c.morphology.at(q) : 0.0;
                };
                return std::pair<double, double>{0.5 * (m(p.x + 1, p.y) - m(p.x - 1, p.y)),
                                                 0.5 * (m(p.x, p.y + 1) - m(p.x, p.y - 1))};
            };
            double axx = 0, axy = 0, ayy = 0, bx = 0, by = 0;
            const double rc2 = 4 * sigmaT * sigmaT;
            for (int y = cb.minY(); y <= cb.maxY(); ++y)
                for (int x = cb.minX(); x <= cb.maxX(); ++x) {
                    const Point2I p{x, y};
                    if (!use.at(p) ||
                        std::pow(x - c.centroid.x, 2) + std::pow(y - c.centroid.y, 2) > rc2)
                        continue;
                    const auto [gx, gy] = grad(p);
                    const double wgt = 1.0 / vimg.at(p), r = rimg.at(p);
                    axx += wgt * gx * gx;
                    axy += wgt * gx * gy;
                    ayy += wgt * gy * gy;
                    bx += wgt * gx * r;
                    by += wgt * gy * r;
                }
            const double det = axx * ayy - axy * axy;
            if (!(det > 0)) continue;
            const double dx = std::clamp((ayy * bx - axy * by) / det, -0.25, 0.25);
            const double dy = std::clamp((axx * by - axy * bx) / det, -0.25, 0.25);
            for (int y = cb.minY(); y <= cb.maxY(); ++y)
                for (int x = cb.minX(); x <= cb.maxX(); ++x) {
                    const Point2I p{x, y};
                    if (!use.at(p)) continue;
                    const auto [gx, gy] = grad(p);
                    rimg.at(p) -= static_cast<float>(dx * gx + dy * gy);
                }
        }
        // Matched filter at the common PSF (σ_T). The native noise went through the matching
        // Gaussian (σ_m) and this one: a Gaussian of σ_f = hypot(σ_m, σ_T), whose square is
        // N(σ_f/√2) / (4π σ_f²).
        const ImageD rf = gaussianSmooth(rimg.cview(), box, sigmaT);
        const ImageD df = gaussianSmooth(dimg.cview(), box, sigmaT);
        const double sf = std::hypot(sm, sigmaT);
        const ImageD vf = gaussianSmooth(vimg.cview(), box, sf / std::sqrt(2.0));
        const double vnorm = 1.0 / (4 * M_PI * sf * sf);
        // The band's matched PSF as the filter sees a point source, 1 at its centre; each child
        // as a point source of its filtered amplitude.
        const ImageD mp =
            matchedPsf(psfKernels.empty() ? nullptr : &psfKernels[b], psfSigma[b], sm);
        const int g = static_cast<int>(std::ceil(4 * sigmaT));
        Image<float> mpf(mp.bbox().grownBy(g), 0.f);
        for (int y = mp.bbox().minY(); y <= mp.bbox().maxY(); ++y)
            for (int x = mp.bbox().minX(); x <= mp.bbox().maxX(); ++x)
                mpf.at({x, y}) = static_cast<float>(mp.at({x, y}));
        ImageD profile = gaussianSmooth(mpf.cview(), mpf.bbox(), sigmaT);
        const double c0 = profile.at({0, 0});
        if (!(c0 > 0)) continue;
        for (double& v : profile.pixels()) v /= c0;
        std::vector<std::pair<Point2D, double>> pts;
        for (const Child& c : result.children) {
            double a = 0;
            if (bilinear(df, c.centroid, a) && a > 0) pts.emplace_back(c.centroid, a);
        }
        for (const Span& sp : footprint.spans().spans())
            for (int x = sp.x0; x <= sp.x1; ++x) {
                const Point2I p{x, sp.y};
                const double var = vf.at(p) * vnorm;
                if (!(var > 0)) continue;
                const std::size_t i = idx(p);
                const double sn = rf.at(p) / std::sqrt(var);
                if (sn > 0) chi2[i] += sn * sn;
                double pred = 0;
                for (const auto& [c, a] : pts) {
                    double phi = 0;
                    if (bilinear(profile, Point2D(x - c.x, sp.y - c.y), phi))
                        pred += a * std::max(0.0, phi);
                }
                wr[i] += rf.at(p) / var;
                wd[i] += df.at(p) / var;
                wp[i] += pred / var;
            }
    }
    // Candidates: local maxima of the band-combined residual S/N, χ = sqrt(Σ_b max(0, S/N_b)²)
    // (a faint object's residual is often below the threshold in each band and above it
    // combined), passing the fraction and PSF tests on the inverse-variance weighted band sums.
    // MIRROR IMAGES: a child's symmetric morphology takes the mean of each pixel and its mirror
    // image; where a fainter sibling's template over-explains its own position (its centre
    // pulled towards the brighter one), the brighter one's morphology is pushed down there and
    // at the mirror image, which leaves a positive residual at the mirror image of the
    // sibling (deblend_test: 2 spurious peaks in 40 scenes, ~5σ, 8 px from the galaxy). A
    // candidate within the separation of a sibling's mirror image about a brighter child is
    // not a new peak.
    std::vector<double> total(result.children.size(), 0.0);
    for (std::size_t k = 0; k < result.children.size(); ++k)
        for (double f : result.children[k].templateFlux) total[k] += std::max(0.0, f);
    auto mirrorOfSibling = [&](Point2I p) {
        for (std::size_t k = 0; k < result.children.size(); ++k) {
            const Point2D m{2 * result.children[k].centroid.x - p.x,
                            2 * result.children[k].centroid.y - p.y};
            for (std::size_t j = 0; j < result.children.size(); ++j) {
                const Point2D c = result.children[j].centroid;
                if (j != k && total[k] > total[j] &&
                    std::pow(c.x - m.x, 2) + std::pow(c.y - m.y, 2) < sep2)
                    return true;
            }
        }
        return false;
    };
    // COMPACTNESS: an object's filtered residual falls off from its peak like the filtered PSF
    // (a point source's to exp(−1) = 0.37 at 2σ_T) or a little slower for a small galaxy;
    // what a bright extended galaxy's model leaves (its profile is not exactly symmetric and
    // monotonic about a half-pixel centre, the PSF not point-symmetric) is broad. On the demo
    // release such broad residuals 1.3–1.9" from the centres of r = 18–19 galaxies became
    // false objects. A candidate's weighted residual must exceed its mean on the ring 1.5–2.5
    // σ_T around it by residualCompactness of its value (point source: ~0.6).
    auto compact = [&](Point2I p) {
        const int r = static_cast<int>(std::ceil(2.5 * sigmaT));
        double sum = 0;
        int n = 0;
        for (int dy = -r; dy <= r; ++dy)
            for (int dx = -r; dx <= r; ++dx) {
                const double d = std::hypot(dx, dy);
                const Point2I q{p.x + dx, p.y + dy};
                if (d < 1.5 * sigmaT || d > 2.5 * sigmaT || !box.contains(q)) continue;
                const std::size_t j = idx(q);
                if (!(wd[j] != 0)) continue;  // outside the footprint's usable pixels
                sum += wr[j];
                ++n;
            }
        const double w = wr[idx(p)];
        return n == 0 || w - sum / n >= config.residualCompactness * w;
    };
    std::vector<Peak> cand;
    const Box2I inner = box.grownBy(-1);
    for (const Span& sp : footprint.spans().spans())
        for (int x = sp.x0; x <= sp.x1; ++x) {
            const Point2I p{x, sp.y};
            if (!inner.contains(p)) continue;
            const std::size_t i = idx(p);
            const double chi = std::sqrt(chi2[i]);
            if (chi < threshold || wr[i] < minFraction * wd[i]) continue;
            bool isMax = true;
            for (int dy = -1; dy <= 1 && isMax; ++dy)
                for (int dx = -1; dx <= 1 && isMax; ++dx)
                    if ((dx || dy) && chi2[idx({x + dx, sp.y + dy})] > chi2[i]) isMax = false;
            if (!isMax) continue;
            if (near ? std::hypot(x - near->x, sp.y - near->y) > nearRadius
                     : !farFrom(footprint.peaks(), p))
                continue;
            if (wd[i] - wp[i] < config.residualPsfExcess * wp[i]) continue;
            if (!near && mirrorOfSibling(p)) continue;
            if (!compact(p)) continue;
            cand.push_back({p, Point2D(p), wr[i], chi});
        }
    std::stable_sort(cand.begin(), cand.end(), [](const Peak& a, const Peak& b) {
        if (a.significance != b.significance) return a.significance > b.significance;
        return a.position < b.position;
    });
    for (const Peak& c : cand)
        if (farFrom(out, c.position)) out.push_back(c);
    return out;
}

}  // namespace

std::vector<Peak> residualPeaks(const Footprint& footprint, const DeblendResult& result,
                                const std::vector<const MaskedImage*>& bands,
                                const std::vector<double>& psfSigma, const DeblendConfig& config,
                                const std::vector<ImageD>& psfKernels) {
    config.validate();
    return residualCandidates(footprint, result, bands, psfSigma, config, psfKernels, nullptr, 0);
}

std::vector<std::size_t> spuriousCandidates(const DeblendResult& result,
                                            const DeblendConfig& config) {
    std::vector<std::size_t> out;
    if (!result.deblended) return out;
    const std::size_t nk = result.children.size();
    // Band sums of the template fluxes (every band is in the same unit, nJy on coadds).
    std::vector<double> total(nk, 0.0);
    for (std::size_t k = 0; k < nk; ++k)
        for (double f : result.children[k].templateFlux) total[k] += std::max(0.0, f);
    // Distance: of the detection peaks, or of the children's centres (a bump's detection peak
    // can lie further out than the light its child takes: demo release, 7 px and 3.7 px).
    auto dist = [&](std::size_t a, std::size_t b) {
        const Child& ca = result.children[a];
        const Child& cb = result.children[b];
        return std::min(std::hypot(ca.peak.position.x - cb.peak.position.x,
                                   ca.peak.position.y - cb.peak.position.y),
                        std::hypot(ca.centroid.x - cb.centroid.x, ca.centroid.y - cb.centroid.y));
    };
    for (std::size_t k = 0; k < nk; ++k) {
        for (std::size_t j = 0; j < nk; ++j) {
            if (j != k && dist(j, k) <= config.pruneRadius && total[j] > total[k]) {
                out.push_back(k);
                break;
            }
        }
    }
    std::stable_sort(out.begin(), out.end(),
                     [&](std::size_t a, std::size_t b) { return total[a] < total[b]; });
    return out;
}

int pruneSpuriousPeaks(Footprint& footprint, DeblendResult& result,
                       const std::vector<const MaskedImage*>& bands,
                       const std::vector<double>& psfSigma, const DeblendConfig& config,
                       const std::vector<ImageD>& psfKernels) {
    config.validate();
    int dropped = 0, refits = 0;
    for (bool again = true; again && result.deblended;) {
        again = false;
        for (std::size_t k : spuriousCandidates(result, config)) {
            if (refits++ >= config.pruneMaxRefits) return dropped;
            Footprint without = footprint;
            without.peaks().erase(without.peaks().begin() + static_cast<std::ptrdiff_t>(k));
            DeblendResult r = deblendFootprint(without, bands, psfSigma, config, psfKernels);
            if (!r.flags.empty()) continue;
            const DeblendResult model =
                r.deblended ? r : fitFootprint(without, bands, psfSigma, config, psfKernels);
            if (!model.deblended || !model.flags.empty()) continue;
            const Point2I at = result.children[k].centroid.nearestPixel();
            if (!residualCandidates(without, model, bands, psfSigma, config, psfKernels, &at,
                                    config.pruneRadius)
                     .empty())
                continue;  // the others leave its light unexplained: a real object
            footprint = std::move(without);
            result = std::move(r);
            ++dropped;
            again = true;
            break;
        }
    }
    return dropped;
}

PatchDeblend deblendPatch(std::vector<MaskedImage*> bands, const std::vector<double>& psfSigma,
                          const MultiBandDetectionConfig& detectConfig,
                          const DeblendConfig& deblendConfig,
                          const std::vector<ImageD>& psfKernels) {
    deblendConfig.validate();
    PatchDeblend out;
    out.footprints = detectMultiBand(bands, psfSigma, detectConfig, psfKernels);
    std::vector<const MaskedImage*> cbands(bands.begin(), bands.end());
    const double sigmaMax = *std::max_element(psfSigma.begin(), psfSigma.end());
    // The peak set is settled with half-pixel centres (FINAL FIT in deblender.h): the residual
    // and spurious-peak tests were tuned on those fits' residuals.
    DeblendConfig search = deblendConfig;
    search.subpixelCentres = false;
    for (std::size_t p = 0; p < out.footprints.size(); ++p) {
        Footprint& fp = out.footprints[p];
        DeblendResult r;
        // Children's positions and sizes (what multifit starts from): of the half-pixel fit.
        std::vector<std::pair<Point2D, double>> where;
        try {
            r = deblendFootprint(fp, cbands, psfSigma, search, psfKernels);
            // RESIDUAL PEAKS: peaks the children leave unexplained; single-peak parents bright
            // enough to hide a neighbour are fitted as one source first.
            if (deblendConfig.residualPeaks && r.flags.empty()) {
                const bool single = fp.peaks().size() == 1 &&
                                    fp.peaks().front().significance >=
                                        deblendConfig.residualMinParentSignificance &&
                                    fp.area() <= deblendConfig.maxPixels;
                DeblendResult fit;
                if (single) fit = fitFootprint(fp, cbands, psfSigma, search, psfKernels);
                const DeblendResult& base = single ? fit : r;
                if (base.deblended && base.flags.empty()) {
                    std::vector<Peak> extra =
                        residualPeaks(fp, base, cbands, psfSigma, search, psfKernels);
                    const std::size_t room =
                        static_cast<std::size_t>(deblendConfig.maxPeaks) - fp.peaks().size();
                    if (extra.size() > room) extra.resize(room);
                    if (!extra.empty()) {
                        fp.peaks().insert(fp.peaks().end(), extra.begin(), extra.end());
                        r = deblendFootprint(fp, cbands, psfSigma, search, psfKernels);
                    }
                }
            }
            // SPURIOUS PEAKS: children that are not objects give their light to their siblings.
            if (deblendConfig.prune && r.deblended)
                pruneSpuriousPeaks(fp, r, cbands, psfSigma, search, psfKernels);
            for (const Child& ch : r.children) {
                double area = 0;
                for (float v : ch.morphology.pixels()) area += v > 0.05f ? 1 : 0;
                where.emplace_back(ch.centroid, std::max(2.0, std::sqrt(area / M_PI)));
            }
            // FINAL FIT with sub-pixel centres on the settled peaks; a final fit that fails or
            // does not converge leaves the (converged) half-pixel one in place.
            if (deblendConfig.subpixelCentres && r.deblended && r.flags.empty()) {
                try {
                    DeblendResult fin =
                        deblendFootprint(fp, cbands, psfSigma, deblendConfig, psfKernels);
                    if (fin.deblended && fin.flags.empty() &&
                        fin.children.size() == r.children.size())
                        r = std::move(fin);
                } catch (const Error&) {
                    // keep the half-pixel fit: it converged on the same peaks
                }
            }
        } catch (const Error&) {
            // Per-object failure: keep the parent with its footprint sums, flagged.
            r = DeblendResult{};
            footprintSums(fp, cbands, r);
            r.flags.push_back("deblend_failed");
        }
        for (const auto& f : r.flags)
            if (std::find(out.degradedFlags.begin(), out.degradedFlags.end(), f) ==
                out.degradedFlags.end())
                out.degradedFlags.push_back(f);
        if (!r.deblended) {
            const Peak& pk = fp.peaks().front();
            PatchObject o;
            o.parent = p;
            o.position = windowedCentroid(fp, cbands, pk.position, sigmaMax);
            o.radius = std::sqrt(double(fp.area()) / M_PI);
            o.significance = pk.significance;
            o.flux = o.modelFlux = o.templateFlux = r.parentFlux;
            o.fluxErr = o.templateFluxErr = r.parentFluxErr;
            // An isolated object has no neighbour; a refused blend's parent holds several.
            o.blendedness = fp.peaks().size() > 1 ? std::nan("") : 0.0;
            out.objects.push_back(std::move(o));
        } else {
            for (std::size_t k = 0; k < r.children.size(); ++k) {
                const Child& ch = r.children[k];
                PatchObject o;
                o.parent = p;
                o.nSiblings = static_cast<int>(r.children.size());
                o.position = where[k].first;
                o.radius = where[k].second;
                o.significance = ch.peak.significance;
                o.flux = ch.flux;
                o.fluxErr = ch.fluxErr;
                o.modelFlux = ch.modelFlux;
                o.templateFlux = ch.templateFlux;
                o.templateFluxErr = ch.templateFluxErr;
                o.blendedness = ch.blendedness;
                out.objects.push_back(std::move(o));
            }
        }
        out.results.push_back(std::move(r));
    }
    return out;
}

Image<float> childImage(const DeblendResult& result, std::size_t k, const Footprint& footprint,
                        const MaskedImage& band, std::size_t bandIndex) {
    const Box2I box = footprint.bbox();
    Image<float> out(box, 0.f);
    const MaskPixel bad = unusableBits(band);
    for (const Span& sp : footprint.spans().spans())
        for (int x = sp.x0; x <= sp.x1; ++x) {
            Point2I p{x, sp.y};
            if (!usable(band, p, bad)) continue;  // not in the fluxes either
            float d = band.image().at(p);
            if (!result.deblended) {
                out.at(p) = d;
                continue;
            }
            double tot = 0, mine = 0;
            for (std::size_t j = 0; j < result.children.size(); ++j) {
                const Image<float>& m = result.children[j].morphology;
                if (!m.bbox().contains(p)) continue;
                double t = result.children[j].sed[bandIndex] * m.at(p);
                tot += t;
                if (j == k) mine = t;
            }
            if (tot > 0)
                out.at(p) = static_cast<float>(d * mine / tot);
            else {
                // Same nearest-peak rule as deblendFootprint for pixels no template covers.
                double best = 1e300;
                std::size_t owner = 0;
                for (std::size_t j = 0; j < result.children.size(); ++j) {
                    Point2I q = result.children[j].peak.position;
                    double d2 = std::pow(p.x - q.x, 2) + std::pow(p.y - q.y, 2);
                    if (d2 < best) {
                        best = d2;
                        owner = j;
                    }
                }
                if (owner == k) out.at(p) = d;
            }
        }
    return out;
}

}  // namespace drp::deblend
