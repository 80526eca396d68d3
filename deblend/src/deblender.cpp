#include "drp/deblend/deblender.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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
}

void DeblendConfig::validate() const {
    if (maxIterations < 1) throw configError("deblend.max-iterations must be >= 1");
    if (minIterations < 1) throw configError("deblend.min-iterations must be >= 1");
    if (!(relativeTolerance > 0 && relativeTolerance < 1))
        throw configError("deblend.relative-tolerance must be in (0, 1)");
    if (maxPeaks < 2) throw configError("deblend.max-peaks must be >= 2");
    if (maxPixels < 1) throw configError("deblend.max-pixels must be >= 1");
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
    ImageD ti(Box2I(Point2I{box.minX(), wide.minY()}, Extent2I{box.width(), wide.height()}), 0.0);
    ImageD tv(ti.bbox(), 0.0);
    for (int y = wide.minY(); y <= wide.maxY(); ++y)
        for (int x = box.minX(); x <= box.maxX(); ++x) {
            double si = 0, sv = 0;
            for (int d = std::max(-h, wide.minX() - x); d <= std::min(h, wide.maxX() - x); ++d) {
                const Point2I p{x + d, y};
                const double v = mi.variance().at(p), a = mi.image().at(p);
                if ((mi.mask().image().at(p) & exclude) || !(v > 0) || !std::isfinite(v) ||
                    !std::isfinite(a))
                    continue;
                si += g[d + h] * a;
                sv += g[d + h] * g[d + h] * v;
            }
            ti.at({x, y}) = si;
            tv.at({x, y}) = sv;
        }
    FilteredImage out{box, ImageD(box, 0.0), ImageD(box, 0.0)};
    for (int y = box.minY(); y <= box.maxY(); ++y)
        for (int x = box.minX(); x <= box.maxX(); ++x) {
            double si = 0, sv = 0;
            for (int d = std::max(-h, wide.minY() - y); d <= std::min(h, wide.maxY() - y); ++d) {
                si += g[d + h] * ti.at({x, y + d});
                sv += g[d + h] * g[d + h] * tv.at({x, y + d});
            }
            out.flux.at({x, y}) = si;
            out.var.at({x, y}) = sv;
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

std::vector<Peak> shoulderPeaks(const Footprint& footprint, const MaskedImage& band,
                                double psfSigma, const MultiBandDetectionConfig& config) {
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
    for (const Peak& pk : known) {
        if (!rb.contains(pk.position)) continue;
        const Point2D c = refinedCentre(f.flux, pk.position);
        // Symmetric template of this peak on the current residual (SDSS deblender): the lesser
        // of a pixel and its mirror image about the peak's centre, never negative.
        for (int y = rb.minY(); y <= rb.maxY(); ++y)
            for (int x = rb.minX(); x <= rb.maxX(); ++x) {
                double m = 0;
                const Point2D q{2 * c.x - x, 2 * c.y - y};
                double t;
                if (!bilinear(r, q, m))
                    t = std::max(0.0, r.at({x, y}));  // no mirror: explained (conservative)
                else
                    t = std::max(0.0, std::min(r.at({x, y}), m));
                tmpl.at({x, y}) = t;
                if (t > 0 && t < r.at({x, y})) {
                    double mv = 0;
                    if (bilinear(f.var, q, mv)) rv.at({x, y}) += mv;
                }
            }
        for (int y = rb.minY(); y <= rb.maxY(); ++y)
            for (int x = rb.minX(); x <= rb.maxX(); ++x) r.at({x, y}) -= tmpl.at({x, y});
    }
    // Candidates: local maxima of the residual inside the footprint, significant in residual S/N,
    // a real fraction of the filtered flux there (PSF asymmetry and centring errors leave
    // residuals proportional to the neighbour's light) and at least `shoulderMinSeparation` from
    // every known peak.
    const double sep2 = std::pow(config.shoulderMinSeparation * psfSigma, 2);
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
                                       const MultiBandDetectionConfig& config) {
    config.validate();
    if (bands.empty() || bands.size() != psfSigma.size())
        throw badInput("detectMultiBand: need one PSF width per band");
    const Box2I box = bands.front()->bbox();
    Image<std::uint8_t> any(box, 0);
    std::vector<Peak> peaks;
    for (std::size_t b = 0; b < bands.size(); ++b) {
        if (!(bands[b]->bbox() == box))
            throw badInput("detectMultiBand: band images have different bounding boxes");
        calib::DetectionResult det = calib::detectSources(*bands[b], psfSigma[b], config.detection);
        for (const auto& fp : det.footprints) {
            for (const Span& s : fp.spans().spans())
                for (int x = s.x0; x <= s.x1; ++x) any(x - box.minX(), s.y - box.minY()) = 1;
            peaks.insert(peaks.end(), fp.peaks().begin(), fp.peaks().end());
        }
    }
    // Merge peaks across bands: most significant first; later ones within the radius are the
    // same object. Ties are broken by position so the result does not depend on band order.
    std::sort(peaks.begin(), peaks.end(), [](const Peak& a, const Peak& b) {
        if (a.significance != b.significance) return a.significance > b.significance;
        return a.position < b.position;
    });
    std::vector<Peak> merged;
    const double r2 = config.peakMergeRadius * config.peakMergeRadius;
    for (const Peak& p : peaks) {
        bool dup = false;
        for (const Peak& q : merged) {
            double dx = p.position.x - q.position.x, dy = p.position.y - q.position.y;
            if (dx * dx + dy * dy <= r2) {
                dup = true;
                break;
            }
        }
        if (!dup) merged.push_back(p);
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
        for (Footprint& fp : out) {
            std::vector<Peak> extra;
            for (std::size_t b = 0; b < bands.size(); ++b)
                for (const Peak& p : shoulderPeaks(fp, *bands[b], psfSigma[b], config))
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
ImageD gaussianSmooth(ConstImageView<float> src, Box2I box, double sigma) {
    ImageD out(box, 0.0);
    if (sigma < 0.2) {
        for (int j = 0; j < box.height(); ++j)
            for (int i = 0; i < box.width(); ++i)
                out(i, j) = src.at({box.minX() + i, box.minY() + j});
        return out;
    }
    int r = static_cast<int>(std::ceil(4 * sigma));
    std::vector<double> k(2 * r + 1);
    for (int d = -r; d <= r; ++d) k[d + r] = std::exp(-0.5 * d * d / (sigma * sigma));
    Box2I wide = box.grownBy(r).clippedTo(src.bbox());
    ImageD tmp(wide, 0.0);
    for (int y = wide.minY(); y <= wide.maxY(); ++y)
        for (int x = wide.minX(); x <= wide.maxX(); ++x) {
            double s = 0, w = 0;
            for (int d = -r; d <= r; ++d) {
                int xx = x + d;
                if (xx < wide.minX() || xx > wide.maxX()) continue;
                s += k[d + r] * src.at({xx, y});
                w += k[d + r];
            }
            tmp.at({x, y}) = s / w;
        }
    for (int y = box.minY(); y <= box.maxY(); ++y)
        for (int x = box.minX(); x <= box.maxX(); ++x) {
            double s = 0, w = 0;
            for (int d = -r; d <= r; ++d) {
                int yy = y + d;
                if (yy < wide.minY() || yy > wide.maxY()) continue;
                s += k[d + r] * tmp.at({x, yy});
                w += k[d + r];
            }
            out.at({x, y}) = s / w;
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

MonotonicOrder monotonicOrder(Box2I box, Point2I peak) {
    const int w = box.width(), h = box.height();
    MonotonicOrder m;
    m.ref.assign(std::size_t(w) * h, -1);
    std::vector<double> dist(std::size_t(w) * h);
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) {
            int dx = box.minX() + i - peak.x, dy = box.minY() + j - peak.y;
            dist[j * w + i] = std::hypot(dx, dy);
            if (dx == 0 && dy == 0) continue;
            int sx = (2 * std::abs(dx) >= std::abs(dy)) ? (dx > 0) - (dx < 0) : 0;
            int sy = (2 * std::abs(dy) >= std::abs(dx)) ? (dy > 0) - (dy < 0) : 0;
            int ri = i - sx, rj = j - sy;
            if (ri >= 0 && ri < w && rj >= 0 && rj < h) m.ref[j * w + i] = rj * w + ri;
        }
    m.order.resize(dist.size());
    std::iota(m.order.begin(), m.order.end(), 0);
    std::stable_sort(m.order.begin(), m.order.end(),
                     [&](int a, int b) { return dist[a] < dist[b]; });
    return m;
}

void projectMonotonic(Eigen::VectorXd& s, const MonotonicOrder& m,
                      const std::vector<std::uint8_t>& inFp) {
    for (int idx : m.order) {
        if (!inFp[idx]) {
            s(idx) = 0;
            continue;
        }
        s(idx) = std::max(0.0, s(idx));
        int r = m.ref[idx];
        if (r >= 0) s(idx) = std::min(s(idx), s(r));
    }
}

double maxEigen(const Eigen::MatrixXd& m) {
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(m, Eigen::EigenvaluesOnly);
    return std::max(es.eigenvalues().maxCoeff(), 1e-300);
}

/// Whether a coadd pixel can be used: finite value, finite positive variance, not NO_DATA or BAD
/// (chip gaps and edges of coadds carry NaN variances).
bool usable(const MaskedImage& mi, Point2I p) {
    static const MaskPixel none = 0;
    MaskPixel bad = none;
    for (const char* name : {"NO_DATA", "BAD"})
        if (mi.mask().planes().has(name)) bad |= mi.mask().planes().bit(name);
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
        double s = 0, v = 0;
        for (const Span& sp : footprint.spans().spans())
            for (int x = sp.x0; x <= sp.x1; ++x)
                if (box.contains(Point2I{x, sp.y}) && usable(*bands[b], {x, sp.y})) {
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

DeblendResult deblendFootprint(const Footprint& footprint,
                               const std::vector<const MaskedImage*>& bands,
                               const std::vector<double>& psfSigma, const DeblendConfig& config) {
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
    if (nk <= 1) return res;  // isolated: the parent is the object
    if (static_cast<int>(nk) > config.maxPeaks) {
        res.flags.push_back("too_many_peaks");
        return res;
    }
    if (footprint.area() > config.maxPixels) {
        res.flags.push_back("too_large");
        return res;
    }

    // PSF-match every band to the broadest one.
    const double sigmaT = *std::max_element(psfSigma.begin(), psfSigma.end());
    // Unusable pixels (usable()) are zero in the smoothed data and out of the loss.
    std::vector<Eigen::VectorXd> data(nb), fpMaskB(nb);
    std::vector<double> weight(nb);
    for (std::size_t b = 0; b < nb; ++b) {
        double sm = std::sqrt(std::max(0.0, sigmaT * sigmaT - psfSigma[b] * psfSigma[b]));
        const Box2I wide =
            box.grownBy(static_cast<int>(std::ceil(4 * sm)) + 1).clippedTo(bands[b]->bbox());
        Image<float> clean(wide, 0.f);
        for (int y = wide.minY(); y <= wide.maxY(); ++y)
            for (int x = wide.minX(); x <= wide.maxX(); ++x)
                if (usable(*bands[b], {x, y})) clean.at({x, y}) = bands[b]->image().at({x, y});
        ImageD d = gaussianSmooth(clean.cview(), box, sm);
        data[b] = Eigen::Map<Eigen::VectorXd>(d.data(), npix);
        fpMaskB[b] = Eigen::VectorXd::Zero(npix);
        std::vector<double> vars;
        for (int j = 0; j < h; ++j)
            for (int i = 0; i < w; ++i)
                if (inFp[j * w + i] && usable(*bands[b], {box.minX() + i, box.minY() + j})) {
                    fpMaskB[b](j * w + i) = 1;
                    vars.push_back(bands[b]->variance().at({box.minX() + i, box.minY() + j}));
                }
        double mv = medianOf(vars);
        weight[b] = mv > 0 ? 1.0 / mv : 1.0;
    }

    // Initialisation: S/N-summed detection image split among peaks by nearest peak, made
    // monotonic; SED from the matched images at the peak.
    std::vector<MonotonicOrder> orders;
    std::vector<int> peakIdx(nk);
    for (std::size_t k = 0; k < nk; ++k) {
        Point2I p = footprint.peaks()[k].position;
        orders.push_back(monotonicOrder(box, p));
        peakIdx[k] = (p.y - box.minY()) * w + (p.x - box.minX());
    }
    Eigen::VectorXd det = Eigen::VectorXd::Zero(npix);
    for (std::size_t b = 0; b < nb; ++b) det += std::sqrt(weight[b]) * data[b];
    std::vector<int> owner(npix, 0);
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) {
            double best = 1e300;
            for (std::size_t k = 0; k < nk; ++k) {
                Point2I p = footprint.peaks()[k].position;
                double d2 = std::pow(box.minX() + i - p.x, 2) + std::pow(box.minY() + j - p.y, 2);
                if (d2 < best) {
                    best = d2;
                    owner[j * w + i] = static_cast<int>(k);
                }
            }
        }
    Eigen::MatrixXd s(npix, nk);  // morphologies, one column per source
    Eigen::MatrixXd a(nb, nk);    // SEDs
    for (std::size_t k = 0; k < nk; ++k) {
        Eigen::VectorXd col = Eigen::VectorXd::Zero(npix);
        for (std::size_t i = 0; i < npix; ++i)
            if (owner[i] == static_cast<int>(k)) col(i) = std::max(0.0, det(i));
        projectMonotonic(col, orders[k], inFp);
        double peak = col(peakIdx[k]);
        if (!(peak > 0)) {
            col.setZero();
            col(peakIdx[k]) = peak = 1.0;
        }
        s.col(k) = col / peak;
        for (std::size_t b = 0; b < nb; ++b)
            a(b, k) = std::max(data[b](peakIdx[k]), 1e-6 / std::sqrt(weight[b]));
    }
    Eigen::VectorXd fpMask(npix);
    for (std::size_t i = 0; i < npix; ++i) fpMask(i) = inFp[i];

    auto loss = [&]() {
        double l = 0;
        for (std::size_t b = 0; b < nb; ++b) {
            Eigen::VectorXd r = (data[b] - s * a.row(b).transpose()).cwiseProduct(fpMaskB[b]);
            l += 0.5 * weight[b] * r.squaredNorm();
        }
        return l;
    };
    double last = loss();
    int quiet = 0;
    res.converged = false;
    for (int it = 1; it <= config.maxIterations; ++it) {
        res.iterations = it;
        // SED block: projected gradient with step 1/λ_max(SᵀS) (exact Lipschitz constant).
        Eigen::MatrixXd sts = s.transpose() * fpMask.asDiagonal() * s;
        double la = maxEigen(sts);
        for (int inner = 0; inner < 3; ++inner)
            for (std::size_t b = 0; b < nb; ++b) {
                Eigen::VectorXd r = (data[b] - s * a.row(b).transpose()).cwiseProduct(fpMaskB[b]);
                Eigen::RowVectorXd g = (s.transpose() * r).transpose();
                a.row(b) = (a.row(b) + g / la).cwiseMax(0.0);
            }
        // Morphology block: gradient step with step 1/λ_max(Σ_b w_b A_bᵀ A_b), then prox.
        Eigen::MatrixXd h2 = Eigen::MatrixXd::Zero(nk, nk);
        for (std::size_t b = 0; b < nb; ++b) h2 += weight[b] * a.row(b).transpose() * a.row(b);
        double ls = maxEigen(h2);
        Eigen::MatrixXd grad = Eigen::MatrixXd::Zero(npix, nk);
        for (std::size_t b = 0; b < nb; ++b) {
            Eigen::VectorXd r = (data[b] - s * a.row(b).transpose()).cwiseProduct(fpMaskB[b]);
            grad += weight[b] * r * a.row(b);
        }
        s += grad / ls;
        for (std::size_t k = 0; k < nk; ++k) {
            Eigen::VectorXd col = s.col(k);
            projectMonotonic(col, orders[k], inFp);
            double peak = col(peakIdx[k]);
            if (peak > 0) {
                s.col(k) = col / peak;
                a.col(k) *= peak;
            } else {
                s.col(k) = col;
            }
        }
        double l = loss();
        double rel = std::abs(last - l) / std::max(l, 1e-300);
        last = l;
        quiet = rel < config.relativeTolerance ? quiet + 1 : 0;
        if (quiet >= 2 && it >= config.minIterations) {
            res.converged = true;
            break;
        }
    }
    if (!res.converged) res.flags.push_back("not_converged");

    // Re-apportion the observed pixels with the templates T_kb = A_kb S_k.
    res.deblended = true;
    res.children.resize(nk);
    for (std::size_t k = 0; k < nk; ++k) {
        Child& c = res.children[k];
        c.peak = footprint.peaks()[k];
        c.sed.assign(a.col(k).data(), a.col(k).data() + nb);
        c.flux.assign(nb, 0.0);
        c.fluxErr.assign(nb, 0.0);
        c.modelFlux.assign(nb, 0.0);
        c.morphology = Image<float>(box, 0.f);
        double st = 0;
        for (std::size_t i = 0; i < npix; ++i) {
            c.morphology.data()[i] = static_cast<float>(s(i, k));
            st += s(i, k);
        }
        // Windowed centroid of the template about its peak (window σ = the matched PSF's): the
        // plain first moment is pulled towards neighbours by the monotonic wings that extend
        // under them. (Windowed centroids of the re-apportioned or neighbour-subtracted data
        // were tried: on the simulated patch they drift towards bright neighbours' residuals.)
        Point2D cen(c.peak.position);
        for (int it = 0; it < 5; ++it) {
            double sw = 0, sx = 0, sy = 0;
            for (std::size_t i = 0; i < npix; ++i) {
                if (s(i, k) <= 0) continue;
                double x = box.minX() + int(i % w), y = box.minY() + int(i / w);
                double d2 = (x - cen.x) * (x - cen.x) + (y - cen.y) * (y - cen.y);
                double wt = s(i, k) * std::exp(-0.5 * d2 / (sigmaT * sigmaT));
                sw += wt;
                sx += wt * x;
                sy += wt * y;
            }
            if (!(sw > 0)) break;
            cen = Point2D(sx / sw, sy / sw);
        }
        c.centroid = cen;
        for (std::size_t b = 0; b < nb; ++b) c.modelFlux[b] = a(b, k) * st;
    }
    std::vector<double> var(nb);
    for (std::size_t b = 0; b < nb; ++b) {
        Eigen::VectorXd err2 = Eigen::VectorXd::Zero(nk);
        for (std::size_t i = 0; i < npix; ++i) {
            if (!fpMaskB[b](i)) continue;
            Point2I p{box.minX() + int(i % w), box.minY() + int(i / w)};
            double d = bands[b]->image().at(p), v = bands[b]->variance().at(p);
            double tot = 0;
            for (std::size_t k = 0; k < nk; ++k) tot += a(b, k) * s(i, k);
            for (std::size_t k = 0; k < nk; ++k) {
                double frac = tot > 0 ? a(b, k) * s(i, k) / tot : (owner[i] == int(k) ? 1.0 : 0.0);
                res.children[k].flux[b] += frac * d;
                err2(k) += frac * frac * v;
            }
        }
        for (std::size_t k = 0; k < nk; ++k) res.children[k].fluxErr[b] = std::sqrt(err2(k));
    }
    // A fit that went non-finite (non-finite input pixels) is discarded: the parent stays.
    bool finite = a.allFinite();
    for (const Child& c : res.children)
        for (std::size_t b = 0; b < nb; ++b) finite = finite && std::isfinite(c.flux[b]);
    if (!finite) {
        res.children.clear();
        res.deblended = false;
        res.flags.push_back("deblend_failed");
    }
    return res;
}

PatchDeblend deblendPatch(std::vector<MaskedImage*> bands, const std::vector<double>& psfSigma,
                          const MultiBandDetectionConfig& detectConfig,
                          const DeblendConfig& deblendConfig) {
    deblendConfig.validate();
    PatchDeblend out;
    out.footprints = detectMultiBand(bands, psfSigma, detectConfig);
    std::vector<const MaskedImage*> cbands(bands.begin(), bands.end());
    const double sigmaMax = *std::max_element(psfSigma.begin(), psfSigma.end());
    for (std::size_t p = 0; p < out.footprints.size(); ++p) {
        const Footprint& fp = out.footprints[p];
        DeblendResult r;
        try {
            r = deblendFootprint(fp, cbands, psfSigma, deblendConfig);
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
            o.flux = o.modelFlux = r.parentFlux;
            o.fluxErr = r.parentFluxErr;
            out.objects.push_back(std::move(o));
        } else {
            for (const Child& ch : r.children) {
                double area = 0;
                for (float v : ch.morphology.pixels()) area += v > 0.05f ? 1 : 0;
                PatchObject o;
                o.parent = p;
                o.nSiblings = static_cast<int>(r.children.size());
                o.position = ch.centroid;
                o.radius = std::max(2.0, std::sqrt(area / M_PI));
                o.significance = ch.peak.significance;
                o.flux = ch.flux;
                o.fluxErr = ch.fluxErr;
                o.modelFlux = ch.modelFlux;
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
    for (const Span& sp : footprint.spans().spans())
        for (int x = sp.x0; x <= sp.x1; ++x) {
            Point2I p{x, sp.y};
            if (!usable(band, p)) continue;  // not in the fluxes either
            float d = band.image().at(p);
            if (!result.deblended) {
                out.at(p) = d;
                continue;
            }
            double tot = 0, mine = 0;
            for (std::size_t j = 0; j < result.children.size(); ++j) {
                double t = result.children[j].sed[bandIndex] * result.children[j].morphology.at(p);
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
