// Deterministic, counter-seeded random numbers for the simulator.
//
// Every random quantity of a simulated survey is drawn from a generator whose state is derived
// only from (survey seed, a stream tag, data ids) — never from the MPI rank, the thread or the
// order in which visits are simulated — so that one seed gives byte-identical files whatever the
// parallelism. `Rng::forStream(seed, Stream::kStar, i)` hashes the key with SplitMix64 (Steele,
// Lea & Flood 2014) into the 256-bit state of xoshiro256** (Blackman & Vigna 2021).
//
// The distributions are implemented here rather than taken from <random>: the standard leaves
// std::normal_distribution and std::poisson_distribution implementation-defined, and files must
// not change with the standard library. Poisson deviates use inversion for small means and the
// PTRS transformed-rejection method (Hörmann 1993, Insurance: Math. Econ. 12, 39) otherwise,
// which is exact (not a Gaussian approximation) at every mean.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

namespace drp::sim {

/// Tags separating the random streams of different kinds of objects.
enum class Stream : std::uint64_t {
    kSkyCount = 1,    ///< numbers of objects
    kStar = 2,        ///< per star
    kGalaxy = 3,      ///< per galaxy
    kPair = 4,        ///< per close-pair companion
    kVisit = 5,       ///< per visit conditions
    kDetector = 6,    ///< per detector (fixed sensor properties: bad columns, QE offsets)
    kNoise = 7,       ///< per visit × detector pixel noise
    kArtefact = 8,    ///< per visit × detector cosmic rays, satellites
    kRefcat = 9,      ///< per reference star
    kPlan = 10,       ///< survey plan (pointings)
    kRawSensor = 11,  ///< per detector raw-path electronics and calibration truth (sim/raw.h)
    kRawNoise = 12,   ///< per exposure × detector raw-path noise and readout drifts
};

class Rng final {
  public:
    /// A generator keyed by the seed, a stream tag and up to a few integer ids.
    static Rng forStream(std::uint64_t seed, Stream stream,
                         std::initializer_list<std::uint64_t> ids = {});

    std::uint64_t next();
    /// Uniform in [0, 1) with 53 random bits.
    double uniform();
    /// Uniform in [a, b).
    double uniform(double a, double b) { return a + (b - a) * uniform(); }
    /// Standard normal (Box–Muller; the second deviate is cached).
    double normal();
    double normal(double mean, double sigma) { return mean + sigma * normal(); }
    /// Poisson deviate of mean `mu` >= 0.
    std::int64_t poisson(double mu);
    /// Exponential deviate with the given mean.
    double exponential(double mean);
    /// Integer uniform in [0, n).
    std::uint64_t below(std::uint64_t n);

  private:
    std::array<std::uint64_t, 4> _s{};
    bool _hasSpare = false;
    double _spare = 0.0;
};

/// SplitMix64 finaliser: a bijective 64-bit mix, used to hash ids.
std::uint64_t splitMix64(std::uint64_t x);

}  // namespace drp::sim
