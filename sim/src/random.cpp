#include "drp/sim/random.h"

#include <cmath>
#include <numbers>

namespace drp::sim {

std::uint64_t splitMix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

Rng Rng::forStream(std::uint64_t seed, Stream stream, std::initializer_list<std::uint64_t> ids) {
    // Chain the key through SplitMix64 so that (seed, stream, ids...) map to unrelated states.
    std::uint64_t h = splitMix64(seed ^ 0x5eed5eed5eed5eedULL);
    h = splitMix64(h ^ static_cast<std::uint64_t>(stream));
    std::uint64_t n = 0;
    for (std::uint64_t id : ids) h = splitMix64(h ^ splitMix64(id + (++n) * 0x632be59bd9b4e019ULL));
    h = splitMix64(h ^ n);
    Rng r;
    for (auto& s : r._s) {
        h = splitMix64(h);
        s = h;
    }
    if ((r._s[0] | r._s[1] | r._s[2] | r._s[3]) == 0) r._s[0] = 1;  // xoshiro's only bad state
    return r;
}

std::uint64_t Rng::next() {
    auto rotl = [](std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
    const std::uint64_t result = rotl(_s[1] * 5, 7) * 9;
    const std::uint64_t t = _s[1] << 17;
    _s[2] ^= _s[0];
    _s[3] ^= _s[1];
    _s[1] ^= _s[2];
    _s[0] ^= _s[3];
    _s[2] ^= t;
    _s[3] = rotl(_s[3], 45);
    return result;
}

double Rng::uniform() {
    return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

std::uint64_t Rng::below(std::uint64_t n) {
    if (n == 0) return 0;
    // Rejection of the biased tail keeps the result exactly uniform.
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    std::uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
}

double Rng::normal() {
    if (_hasSpare) {
        _hasSpare = false;
        return _spare;
    }
    double u1;
    do u1 = uniform();
    while (u1 <= 0.0);
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double phi = 2.0 * std::numbers::pi * u2;
    _spare = r * std::sin(phi);
    _hasSpare = true;
    return r * std::cos(phi);
}

double Rng::exponential(double mean) {
    double u;
    do u = uniform();
    while (u <= 0.0);
    return -mean * std::log(u);
}

std::int64_t Rng::poisson(double mu) {
    if (!(mu > 0.0)) return 0;
    if (mu < 10.0) {
        // Inversion by sequential search (Knuth): exact, fast for small means.
        const double l = std::exp(-mu);
        std::int64_t k = 0;
        double p = uniform();
        while (p > l) {
            ++k;
            p *= uniform();
        }
        return k;
    }
    // PTRS (Hörmann 1993), constants from the paper (as in numpy's random_poisson_ptrs).
    const double slam = std::sqrt(mu);
    const double loglam = std::log(mu);
    const double b = 0.931 + 2.53 * slam;
    const double a = -0.059 + 0.02483 * b;
    const double invalpha = 1.1239 + 1.1328 / (b - 3.4);
    const double vr = 0.9277 - 3.6224 / (b - 2);
    while (true) {
        const double u = uniform() - 0.5;
        const double v = uniform();
        const double us = 0.5 - std::abs(u);
        const auto k = static_cast<std::int64_t>(std::floor((2 * a / us + b) * u + mu + 0.43));
        if (us >= 0.07 && v <= vr) return k;
        if (k < 0 || (us < 0.013 && v > us)) continue;
        if (std::log(v) + std::log(invalpha) - std::log(a / (us * us) + b) <=
            -mu + static_cast<double>(k) * loglam - std::lgamma(static_cast<double>(k) + 1))
            return k;
    }
}

}  // namespace drp::sim
