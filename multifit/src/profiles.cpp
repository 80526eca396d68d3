#include "drp/multifit/profiles.h"

#include <cmath>
#include <map>
#include <mutex>

#include <Eigen/Dense>

#include "drp/core/error.h"
#include "drp/multifit/nnls.h"

namespace drp::multifit {

namespace {

/// Regularized lower incomplete gamma P(a, x): series for x < a + 1, Lentz continued fraction
/// for the complement otherwise (both converge to double precision in < 200 terms here).
double regularizedGammaP(double a, double x) {
    if (x <= 0) return 0.0;
    double lnPrefactor = a * std::log(x) - x - std::lgamma(a);
    if (x < a + 1) {
        double term = 1.0 / a, sum = term;
        for (int k = 1; k < 1000; ++k) {
            term *= x / (a + k);
            sum += term;
            if (std::abs(term) < std::abs(sum) * 1e-16) break;
        }
        return sum * std::exp(lnPrefactor);
    }
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int k = 1; k < 1000; ++k) {
        double an = -k * (k - a);
        b += 2;
        d = an * d + b;
        if (std::abs(d) < tiny) d = tiny;
        c = b + an / c;
        if (std::abs(c) < tiny) c = tiny;
        d = 1 / d;
        double delta = d * c;
        h *= delta;
        if (std::abs(delta - 1) < 1e-16) break;
    }
    return 1.0 - std::exp(lnPrefactor) * h;
}

RadialMixture computeMixture(double n) {
    // Fit the enclosed-flux curve F(<x) of the *truncated* profile on log-spaced radii: linear
    // in the amplitudes since a circular Gaussian of variance v encloses 1 − exp(−x²/2v). Beyond
    // the truncation radius the curve is flat at 1, which keeps the wide components from
    // carrying light there. A heavily weighted extra row pins the total flux to 1.
    const int nVar = 16;
    const double vMin = 1e-6, vMax = 60.0;
    const int nRad = 300;
    const double xMin = 1e-3, xMax = 40.0;
    Eigen::MatrixXd a(nRad + 1, nVar);
    Eigen::VectorXd y(nRad + 1);
    std::vector<double> variances(nVar);
    for (int k = 0; k < nVar; ++k)
        variances[k] = vMin * std::pow(vMax / vMin, double(k) / (nVar - 1));
    for (int i = 0; i < nRad; ++i) {
        double x = xMin * std::pow(xMax / xMin, double(i) / (nRad - 1));
        for (int k = 0; k < nVar; ++k) a(i, k) = 1.0 - std::exp(-x * x / (2 * variances[k]));
        y(i) = truncatedSersicEnclosedFraction(n, x);
    }
    const double wTotal = 1e3;
    a.row(nRad).setConstant(wTotal);
    y(nRad) = wTotal;
    Eigen::VectorXd amp = nnls(a, y);
    RadialMixture m;
    double sum = amp.sum();
    for (int k = 0; k < nVar; ++k) {
        if (amp(k) > 1e-7) {
            m.amplitudes.push_back(amp(k) / sum);
            m.variances.push_back(variances[k]);
        }
    }
    return m;
}

}  // namespace

double sersicB(double n) {
    // Solve P(2n, b) = 1/2 by Newton from the Ciotti & Bertin (1999) first-order estimate.
    double b = 2 * n - 1.0 / 3 + 4.0 / (405 * n);
    for (int it = 0; it < 50; ++it) {
        double f = regularizedGammaP(2 * n, b) - 0.5;
        // d/db P(a, b) = b^{a-1} e^{-b} / Γ(a)
        double df = std::exp((2 * n - 1) * std::log(b) - b - std::lgamma(2 * n));
        double step = f / df;
        b -= step;
        if (std::abs(step) < 1e-14 * b) break;
    }
    return b;
}

double sersicEnclosedFraction(double n, double x) {
    if (x <= 0) return 0.0;
    return regularizedGammaP(2 * n, sersicB(n) * std::pow(x, 1.0 / n));
}

double sersicTruncation(double n) {
    // P(2n, b (x)^{1/n}) = 0.999 solved by bisection on t = b x^{1/n} (P is increasing in t).
    double lo = 0, hi = 4 * n + 60;
    for (int it = 0; it < 200 && hi - lo > 1e-12 * hi; ++it) {
        const double mid = 0.5 * (lo + hi);
        (regularizedGammaP(2 * n, mid) < 0.999 ? lo : hi) = mid;
    }
    return std::min(8.0, std::pow(0.5 * (lo + hi) / sersicB(n), n));
}

double truncatedSersicEnclosedFraction(double n, double x) {
    const double t = sersicTruncation(n);
    return sersicEnclosedFraction(n, std::min(x, t)) / sersicEnclosedFraction(n, t);
}

const RadialMixture& sersicMixture(double n) {
    if (!(n >= 0.5 && n <= 6.0))
        throw badInput("Sérsic index " + std::to_string(n) + " outside [0.5, 6]");
    static std::mutex mutex;
    static std::map<double, RadialMixture> cache;
    std::lock_guard lock(mutex);
    auto it = cache.find(n);
    if (it == cache.end()) it = cache.emplace(n, computeMixture(n)).first;
    return it->second;
}

}  // namespace drp::multifit
