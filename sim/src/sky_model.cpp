#include "drp/sim/sky_model.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <Eigen/Core>

#include "drp/core/error.h"
#include "drp/sim/camera.h"
#include "drp/sim/random.h"

namespace drp::sim {

int bandIndex(const std::string& band) {
    for (int i = 0; i < kNumBands; ++i)
        if (band == kBandNames[i]) return i;
    throw badInput("unknown band '" + band + "' (expected one of u g r i z y)");
}

double magToNJy(double mag) {
    return std::pow(10.0, -0.4 * (mag - 31.4));
}
double nJyToMag(double flux) {
    return 31.4 - 2.5 * std::log10(flux);
}

void SkyModelConfig::validate() const {
    auto need = [](bool ok, const std::string& what) {
        if (!ok) throw configError("sky model config: " + what);
    };
    need(starDensity >= 0 && galaxyDensityRef >= 0, "densities must be >= 0");
    need(starMagBright < starMagFaint, "starMagBright must be < starMagFaint");
    need(galaxyMagBright < galaxyMagFaint, "galaxyMagBright must be < galaxyMagFaint");
    need(starSlope > 0 && galaxySlope > 0, "count slopes must be > 0");
    need(pairFraction >= 0 && pairFraction <= 1, "pairFraction must be in [0, 1]");
    need(pairSepMin > 0 && pairSepMin <= pairSepMax, "need 0 < pairSepMin <= pairSepMax");
}

double SkyModelConfig::galaxyDensity() const {
    // N(<m) = N_ref 10^(s (m - m_ref)).
    return galaxyDensityRef * (std::pow(10.0, galaxySlope * (galaxyMagFaint - galaxyMagRef)) -
                               std::pow(10.0, galaxySlope * (galaxyMagBright - galaxyMagRef)));
}

namespace {

// A magnitude drawn from dN/dm ∝ 10^(s m) on [m0, m1) by inverting the cumulative counts.
double powerLawMag(Rng& rng, double m0, double m1, double s) {
    const double a = std::pow(10.0, s * m0), b = std::pow(10.0, s * m1);
    return std::log10(a + rng.uniform() * (b - a)) / s;
}

SpherePoint uniformPosition(Rng& rng, const SkyRegion& region) {
    const double h = region.halfSizeDeg;
    return gnomonicDeproject(region.center,
                             Eigen::Vector2d(rng.uniform(-h, h), rng.uniform(-h, h)));
}

// Magnitudes in u g r i z y from r and colours (u-g, g-r, r-i, i-z, z-y).
BandFluxes fluxesFromColours(double r, const std::array<double, 5>& c) {
    std::array<double, kNumBands> m{};
    m[2] = r;
    m[1] = r + c[1];
    m[0] = m[1] + c[0];
    m[3] = r - c[2];
    m[4] = m[3] - c[3];
    m[5] = m[4] - c[4];
    BandFluxes f{};
    for (int b = 0; b < kNumBands; ++b) f[b] = magToNJy(m[b]);
    return f;
}

// Distortion-convention ellipticity of an axis ratio q at position angle phi.
std::pair<double, double> ellipticity(double q, double phi) {
    const double e = (1 - q * q) / (1 + q * q);
    return {e * std::cos(2 * phi), e * std::sin(2 * phi)};
}

TrueObject makeStar(std::uint64_t seed, std::int64_t index, const SkyModelConfig& cfg,
                    const SkyRegion& region) {
    Rng rng = Rng::forStream(seed, Stream::kStar, {static_cast<std::uint64_t>(index)});
    TrueObject o;
    o.isStar = true;
    o.position = uniformPosition(rng, region);
    const double r = powerLawMag(rng, cfg.starMagBright, cfg.starMagFaint, cfg.starSlope);
    // Halo/thick-disk turn-off stars (t < 0.4) dominate at bright magnitudes, M dwarfs at faint
    // ones.
    const double t = rng.uniform() < 0.55 ? rng.uniform(0.0, 0.4) : rng.uniform(0.4, 1.0);
    const double t4 = t * t * t * t;
    const std::array<double, 5> colours = {0.9 + 1.7 * t + rng.normal(0, 0.05),  // u-g
                                           std::min(1.45, 0.25 + 1.2 * t),       // g-r
                                           0.08 + 0.35 * t + 1.5 * t4,           // r-i
                                           0.03 + 0.2 * t + 0.7 * t4,            // i-z
                                           0.02 + 0.1 * t + 0.3 * t4};           // z-y
    o.flux = fluxesFromColours(r, colours);
    return o;
}

TrueObject makeGalaxy(Rng& rng, const SpherePoint& position, double r) {
    TrueObject o;
    o.position = position;
    const bool early = rng.uniform() < 0.3;
    const double bt = early ? rng.uniform(0.5, 0.9) : rng.uniform(0.0, 0.3);
    const double zeta = rng.uniform();  // redshift-like reddening of both SEDs
    const std::array<double, 5> bulgeCol = {
        1.6 + 0.6 * zeta, 0.70 + 0.6 * zeta + rng.normal(0, 0.04), 0.35 + 0.3 * zeta,
        0.20 + 0.15 * zeta, 0.12 + 0.05 * zeta};
    const std::array<double, 5> diskCol = {
        0.8 + 0.4 * zeta, 0.30 + 0.4 * zeta + rng.normal(0, 0.08), 0.15 + 0.25 * zeta,
        0.08 + 0.12 * zeta, 0.04 + 0.05 * zeta};
    const double rb = bt > 0 ? r - 2.5 * std::log10(bt) : 99.0;
    const double rd = r - 2.5 * std::log10(1.0 - bt);
    o.bulgeFlux = fluxesFromColours(rb, bulgeCol);
    const BandFluxes disk = fluxesFromColours(rd, diskCol);
    if (bt <= 0) o.bulgeFlux.fill(0.0);
    for (int b = 0; b < kNumBands; ++b) o.flux[b] = o.bulgeFlux[b] + disk[b];
    o.diskREff = std::max(0.05, 0.6 * std::pow(10.0, -0.1 * (r - 22.0) + rng.normal(0, 0.2)));
    o.bulgeREff = std::max(0.03, o.diskREff * rng.uniform(0.2, 0.6));
    const double phi = rng.uniform(0.0, std::numbers::pi);
    std::tie(o.diskE1, o.diskE2) = ellipticity(rng.uniform(0.2, 1.0), phi);
    std::tie(o.bulgeE1, o.bulgeE2) = ellipticity(rng.uniform(0.6, 1.0), phi);
    return o;
}

}  // namespace

std::vector<TrueObject> generateSky(const SkyModelConfig& cfg, const SkyRegion& region,
                                    std::uint64_t seed) {
    cfg.validate();
    if (!(region.halfSizeDeg > 0 && region.halfSizeDeg < 10))
        throw configError("sky region half-size must be in (0, 10) degrees");
    Rng counts = Rng::forStream(seed, Stream::kSkyCount);
    const std::int64_t nStars = counts.poisson(cfg.starDensity * region.areaDeg2());
    const std::int64_t nGal = counts.poisson(cfg.galaxyDensity() * region.areaDeg2());
    std::vector<TrueObject> sky;
    sky.reserve(static_cast<std::size_t>(nStars + nGal * (1 + cfg.pairFraction) + 16));
    for (std::int64_t i = 0; i < nStars; ++i) sky.push_back(makeStar(seed, i, cfg, region));
    std::vector<std::int64_t> paired;
    for (std::int64_t i = 0; i < nGal; ++i) {
        Rng rng = Rng::forStream(seed, Stream::kGalaxy, {static_cast<std::uint64_t>(i)});
        const SpherePoint pos = uniformPosition(rng, region);
        const double r = powerLawMag(rng, cfg.galaxyMagBright, cfg.galaxyMagFaint, cfg.galaxySlope);
        sky.push_back(makeGalaxy(rng, pos, r));
        if (rng.uniform() < cfg.pairFraction)
            paired.push_back(static_cast<std::int64_t>(sky.size()) - 1);
    }
    for (std::int64_t idx : paired) {
        Rng rng = Rng::forStream(seed, Stream::kPair, {static_cast<std::uint64_t>(idx)});
        const TrueObject& host = sky[static_cast<std::size_t>(idx)];
        const SpherePoint pos =
            host.position.offset(radians(rng.uniform(0, 2 * std::numbers::pi)),
                                 arcseconds(rng.uniform(cfg.pairSepMin, cfg.pairSepMax)));
        const double r =
            std::min(cfg.galaxyMagFaint, nJyToMag(host.flux[2]) + rng.uniform(0.0, 2.0));
        sky.push_back(makeGalaxy(rng, pos, r));
        sky.back().pairedWith = idx + 1;
        sky[static_cast<std::size_t>(idx)].pairedWith = static_cast<std::int64_t>(sky.size());
    }
    for (std::size_t i = 0; i < sky.size(); ++i) sky[i].id = static_cast<std::int64_t>(i) + 1;
    return sky;
}

}  // namespace drp::sim
