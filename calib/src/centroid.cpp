#include "drp/calib/centroid.h"

#include <cmath>
#include <vector>

namespace drp::calib {

CentroidResult measureCentroid(const MaskedImage& mi, Point2D initial, double s,
                               MaskPixel badBits) {
    CentroidResult r;
    r.position = initial;
    if (!(s > 0)) {
        r.failed = true;
        return r;
    }
    const Box2I box = mi.bbox();
    const int half = static_cast<int>(std::ceil(4 * s));
    const double inv2s2 = 0.5 / (s * s), invS2 = 1.0 / (s * s);
    Point2D c = initial;
    double jxx = 0, jyy = 0, jxy = 0, cxx = 0, cyy = 0, cxy = 0;
    bool converged = false;
    std::vector<double> ex;
    for (int it = 0; it < 30; ++it) {
        r.iterations = it + 1;
        Point2I cp = c.nearestPixel();
        Box2I win = Box2I::fromCorners({cp.x - half, cp.y - half}, {cp.x + half, cp.y + half});
        Box2I clip = win.clippedTo(box);
        r.edge = clip != win;
        double fx = 0, fy = 0, swi = 0;
        jxx = jyy = jxy = cxx = cyy = cxy = 0;
        r.badPixels = false;
        int used = 0;
        // The Gaussian weight is separable: one exp per window column and row, not per pixel.
        ex.resize(clip.width());
        for (int x = clip.minX(); x <= clip.maxX(); ++x) {
            const double dx = x - c.x;
            ex[x - clip.minX()] = std::exp(-dx * dx * inv2s2);
        }
        for (int y = clip.minY(); y <= clip.maxY(); ++y) {
            int j = y - box.minY();
            const float* im = mi.image().row(j);
            const float* var = mi.variance().row(j);
            const MaskPixel* mk = mi.mask().image().row(j);
            double dy = y - c.y;
            const double ey = std::exp(-dy * dy * inv2s2);
            for (int x = clip.minX(); x <= clip.maxX(); ++x) {
                int i = x - box.minX();
                double dx = x - c.x;
                if ((mk[i] & badBits) || !std::isfinite(im[i])) {
                    if (dx * dx + dy * dy < 4 * s * s) r.badPixels = true;
                    continue;
                }
                double w = ex[x - clip.minX()] * ey, wi = w * im[i], w2v = w * w * var[i];
                fx += wi * dx;
                fy += wi * dy;
                swi += wi;
                jxx += wi * (dx * dx * invS2 - 1);
                jyy += wi * (dy * dy * invS2 - 1);
                jxy += wi * dx * dy * invS2;
                cxx += w2v * dx * dx;
                cyy += w2v * dy * dy;
                cxy += w2v * dx * dy;
                ++used;
            }
        }
        if (used == 0 || !(swi > 0)) break;
        double det = jxx * jyy - jxy * jxy;
        double sx, sy;
        if (jxx < 0 && jyy < 0 && det > 0) {  // J negative definite: Newton step −J⁻¹F
            sx = -(jyy * fx - jxy * fy) / det;
            sy = -(-jxy * fx + jxx * fy) / det;
        } else {  // far from a Gaussian-like peak: the Gaussian-case step, 2 × weighted mean offset
            sx = 2 * fx / swi;
            sy = 2 * fy / swi;
        }
        double step = std::hypot(sx, sy);
        if (step > s) {  // damp wild steps
            sx *= s / step;
            sy *= s / step;
        }
        c = {c.x + sx, c.y + sy};
        if (std::hypot(c.x - initial.x, c.y - initial.y) > 3 * s + 1) break;
        if (step < 1e-5) {
            converged = jxx < 0 && jyy < 0 && det > 0;
            break;
        }
    }
    if (!converged) {
        r.failed = true;
        r.position = initial;
        return r;
    }
    r.position = c;
    // Cov = J⁻¹ C J⁻ᵀ with the 2×2 matrices above (J symmetric).
    double det = jxx * jyy - jxy * jxy;
    double ixx = jyy / det, iyy = jxx / det, ixy = -jxy / det;  // J⁻¹
    // A = J⁻¹ C
    double axx = ixx * cxx + ixy * cxy, axy = ixx * cxy + ixy * cyy;
    double ayx = ixy * cxx + iyy * cxy, ayy = ixy * cxy + iyy * cyy;
    double vxx = axx * ixx + axy * ixy, vyy = ayx * ixy + ayy * iyy, vxy = axx * ixy + axy * iyy;
    r.xErr = std::sqrt(std::max(vxx, 0.0));
    r.yErr = std::sqrt(std::max(vyy, 0.0));
    r.xyCov = vxy;
    return r;
}

template <typename T>
ShapeResult measureAdaptiveMoments(ConstImageView<T> img, Point2D initial, double initialSigma,
                                   const Mask* mask, MaskPixel badBits) {
    ShapeResult r;
    r.center = initial;
    Quadrupole m{initialSigma * initialSigma, initialSigma * initialSigma, 0};
    Point2D c = initial;
    const Box2I box = img.bbox();
    for (int it = 0; it < 200; ++it) {
        r.iterations = it + 1;
        double det = m.determinant();
        if (!(det > 0) || !(m.ixx > 0)) break;
        // Inverse of M for the weight exponent.
        double ia = m.iyy / det, ib = m.ixx / det, ic = -m.ixy / det;
        double rad = 4.5 * std::sqrt(std::max(m.ixx, m.iyy));
        Box2I win = Box2I::fromCorners({int(std::floor(c.x - rad)), int(std::floor(c.y - rad))},
                                       {int(std::ceil(c.x + rad)), int(std::ceil(c.y + rad))})
                        .clippedTo(box);
        double s0 = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        for (int y = win.minY(); y <= win.maxY(); ++y) {
            int j = y - box.minY();
            double dy = y - c.y;
            for (int x = win.minX(); x <= win.maxX(); ++x) {
                int i = x - box.minX();
                if (mask && ((*mask)(x - mask->bbox().minX(), y - mask->bbox().minY()) & badBits))
                    continue;
                double v = img(i, j);
                if (!std::isfinite(v)) continue;
                double dx = x - c.x;
                double e = ia * dx * dx + ib * dy * dy + 2 * ic * dx * dy;
                if (e > 20.25) continue;  // beyond 4.5σ of the weight
                double wv = std::exp(-0.5 * e) * v;
                s0 += wv;
                sx += wv * dx;
                sy += wv * dy;
                sxx += wv * dx * dx;
                syy += wv * dy * dy;
                sxy += wv * dx * dy;
            }
        }
        if (!(s0 > 0)) break;
        double mx = sx / s0, my = sy / s0;
        Quadrupole mw{sxx / s0 - mx * mx, syy / s0 - my * my, sxy / s0 - mx * my};
        // M_new = (Mw⁻¹ − M⁻¹)⁻¹ when positive definite, else 2 Mw.
        double dw = mw.determinant();
        Quadrupole next;
        bool ok = false;
        if (dw > 0 && mw.ixx > 0) {
            double pa = mw.iyy / dw - ia, pb = mw.ixx / dw - ib, pc = -mw.ixy / dw - ic;
            double pd = pa * pb - pc * pc;
            if (pa > 0 && pd > 0) {
                next = {pb / pd, pa / pd, -pc / pd};
                ok = true;
            }
        }
        if (!ok) next = {2 * mw.ixx, 2 * mw.iyy, 2 * mw.ixy};
        if (!(next.determinant() > 0) || next.trace() > 1e4) break;
        c = {c.x + 2 * mx, c.y + 2 * my};
        double change =
            std::abs(next.ixx - m.ixx) + std::abs(next.iyy - m.iyy) + std::abs(next.ixy - m.ixy);
        m = next;
        if (std::hypot(c.x - initial.x, c.y - initial.y) > 3 * std::sqrt(m.trace()) + 2) break;
        if (change < 1e-7 * m.trace() && std::hypot(mx, my) < 1e-6) {
            r.moments = m;
            r.center = c;
            return r;
        }
    }
    r.failed = true;
    r.moments = m;
    r.center = c;
    return r;
}

template ShapeResult measureAdaptiveMoments<float>(ConstImageView<float>, Point2D, double,
                                                   const Mask*, MaskPixel);
template ShapeResult measureAdaptiveMoments<double>(ConstImageView<double>, Point2D, double,
                                                    const Mask*, MaskPixel);

}  // namespace drp::calib
