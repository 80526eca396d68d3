#include "drp/multifit/gaussian_mixture.h"

#include <cmath>
#include <numbers>

#include <Eigen/Dense>

#include "drp/core/error.h"

namespace drp::multifit {

double GaussianMixture::totalAmplitude() const {
    double s = 0;
    for (auto& g : _components) s += g.amplitude;
    return s;
}

GaussianMixture GaussianMixture::transformed(const Eigen::Matrix2d& a,
                                             const Eigen::Vector2d& b) const {
    GaussianMixture out;
    out._components.reserve(_components.size());
    for (auto& g : _components)
        out._components.push_back({g.amplitude, a * g.mean + b, a * g.cov * a.transpose()});
    return out;
}

GaussianMixture GaussianMixture::convolvedWith(const GaussianMixture& other) const {
    GaussianMixture out;
    out._components.reserve(_components.size() * other._components.size());
    for (auto& g : _components)
        for (auto& h : other._components)
            out._components.push_back({g.amplitude * h.amplitude, g.mean + h.mean, g.cov + h.cov});
    return out;
}

double GaussianMixture::evaluate(const Eigen::Vector2d& x) const {
    double v = 0;
    for (auto& g : _components) {
        Eigen::Vector2d d = x - g.mean;
        double det = g.cov.determinant();
        v += g.amplitude / (2 * std::numbers::pi * std::sqrt(det)) *
             std::exp(-0.5 * d.dot(g.cov.inverse() * d));
    }
    return v;
}

void GaussianMixture::addToImage(ImageView<double> image, double scale, double nSigma) const {
    const Box2I box = image.bbox();
    for (auto& g : _components) {
        double det = g.cov(0, 0) * g.cov(1, 1) - g.cov(0, 1) * g.cov(1, 0);
        if (!(det > 0)) continue;
        const double ixx = g.cov(1, 1) / det, iyy = g.cov(0, 0) / det, ixy = -g.cov(0, 1) / det;
        const double norm = scale * g.amplitude / (2 * std::numbers::pi * std::sqrt(det));
        const double rx = nSigma * std::sqrt(g.cov(0, 0)), ry = nSigma * std::sqrt(g.cov(1, 1));
        int x0 = std::max(box.minX(), static_cast<int>(std::floor(g.mean.x() - rx)));
        int x1 = std::min(box.maxX(), static_cast<int>(std::ceil(g.mean.x() + rx)));
        int y0 = std::max(box.minY(), static_cast<int>(std::floor(g.mean.y() - ry)));
        int y1 = std::min(box.maxY(), static_cast<int>(std::ceil(g.mean.y() + ry)));
        const double cut = nSigma * nSigma;
        for (int y = y0; y <= y1; ++y) {
            double dy = y - g.mean.y();
            double* row = image.row(y - box.minY());
            for (int x = x0; x <= x1; ++x) {
                double dx = x - g.mean.x();
                double q = ixx * dx * dx + 2 * ixy * dx * dy + iyy * dy * dy;
                if (q < cut) row[x - box.minX()] += norm * std::exp(-0.5 * q);
            }
        }
    }
}

PsfMixtureFit fitPsfMixture(ConstImageView<double> psf, int nComponents,
                            const GaussianMixture* start) {
    if (nComponents < 1 || nComponents > 6) throw badInput("PSF mixture needs 1-6 components");
    if (start && static_cast<int>(start->size()) != nComponents)
        throw badInput("PSF mixture: the starting mixture has " + std::to_string(start->size()) +
                       " components, not " + std::to_string(nComponents));
    // Expectation-maximisation on the pixel samples, each pixel centre weighted by its (clipped
    // non-negative) value: maximises Σ_pix I log m, i.e. minimises the KL divergence from the
    // PSF image to the mixture. Flux-weighted, so cores and wings are both represented.
    const int w = psf.width(), h = psf.height();
    std::vector<Eigen::Vector2d> pos;
    std::vector<double> val;
    double total = 0, sx = 0, sy = 0;
    for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) {
            double v = std::max(0.0, psf(i, j));
            Eigen::Vector2d p(i + psf.xy0().x, j + psf.xy0().y);
            pos.push_back(p);
            val.push_back(v);
            total += v;
            sx += v * p.x();
            sy += v * p.y();
        }
    if (!(total > 0)) throw Error(error_class::kNumerical, "PSF image has no positive pixels");
    Eigen::Vector2d c(sx / total, sy / total);
    Eigen::Matrix2d m = Eigen::Matrix2d::Zero();
    for (std::size_t k = 0; k < pos.size(); ++k) {
        Eigen::Vector2d d = pos[k] - c;
        m += val[k] * d * d.transpose();
    }
    m /= total;
    std::vector<Gaussian> comps(nComponents);
    for (int k = 0; k < nComponents; ++k) {
        // Spread the starting sizes over a factor ~5 in variance around the second moment.
        double s = nComponents == 1 ? 1.0 : 0.3 * std::pow(5.0, double(k) / (nComponents - 1));
        comps[k] = {total / nComponents, c, m * s};
    }
    if (start) comps = start->components();
    std::vector<double> resp(pos.size() * nComponents);
    double lastLogL = -1e300;
    const int maxIterations = start ? 50 : 400;
    for (int iter = 0; iter < maxIterations; ++iter) {
        double logL = 0;
        std::vector<Eigen::Matrix2d> inv(nComponents);
        std::vector<double> norm(nComponents);
        for (int k = 0; k < nComponents; ++k) {
            inv[k] = comps[k].cov.inverse();
            norm[k] =
                comps[k].amplitude / (2 * std::numbers::pi * std::sqrt(comps[k].cov.determinant()));
        }
        for (std::size_t p = 0; p < pos.size(); ++p) {
            double sum = 0;
            for (int k = 0; k < nComponents; ++k) {
                Eigen::Vector2d d = pos[p] - comps[k].mean;
                double r = norm[k] * std::exp(-0.5 * d.dot(inv[k] * d));
                resp[p * nComponents + k] = r;
                sum += r;
            }
            if (sum > 0) {
                for (int k = 0; k < nComponents; ++k) resp[p * nComponents + k] /= sum;
                logL += val[p] * std::log(sum);
            }
        }
        for (int k = 0; k < nComponents; ++k) {
            double wk = 0;
            Eigen::Vector2d mu = Eigen::Vector2d::Zero();
            for (std::size_t p = 0; p < pos.size(); ++p) {
                double r = val[p] * resp[p * nComponents + k];
                wk += r;
                mu += r * pos[p];
            }
            if (!(wk > total * 1e-9)) continue;  // a dead component keeps its last state
            mu /= wk;
            Eigen::Matrix2d cov = Eigen::Matrix2d::Zero();
            for (std::size_t p = 0; p < pos.size(); ++p) {
                Eigen::Vector2d d = pos[p] - mu;
                cov += val[p] * resp[p * nComponents + k] * d * d.transpose();
            }
            cov /= wk;
            // Floor the variance at 1/12 px² (a pixel's own variance): pixel-sampled data cannot
            // constrain narrower components and EM would otherwise collapse one onto a pixel.
            cov(0, 0) = std::max(cov(0, 0), 1.0 / 12);
            cov(1, 1) = std::max(cov(1, 1), 1.0 / 12);
            comps[k] = {wk, mu, cov};
        }
        if (std::abs(logL - lastLogL) < 1e-9 * std::abs(logL)) break;
        lastLogL = logL;
    }
    PsfMixtureFit out;
    out.mixture = GaussianMixture(comps);
    double peak = *std::max_element(val.begin(), val.end());
    double ss = 0;
    for (std::size_t p = 0; p < pos.size(); ++p) {
        double r =
            out.mixture.evaluate(pos[p]) - psf(static_cast<int>(p % w), static_cast<int>(p / w));
        ss += r * r;
    }
    out.residualRms = std::sqrt(ss / pos.size()) / peak;
    return out;
}

}  // namespace drp::multifit
