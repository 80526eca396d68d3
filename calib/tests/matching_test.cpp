// Sky matching and friends-of-friends association against synthetic truth.
#include "drp/calib/matching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "drp/core/error.h"

namespace drp {
namespace {

/// Stars near (150°, 2°) on a 0.2° field, observed in `nVisits` visits with 30 mas noise.
struct Detections {
    std::vector<SpherePoint> sky;
    std::vector<std::int64_t> key, visit, truth;
};

Detections makeDetections(int nStars, int nVisits, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uni(-0.1, 0.1);
    std::normal_distribution<double> noise(0.0, 0.030 / 3600.0);
    std::vector<SpherePoint> stars;
    // Stars at least 5″ apart: closer real pairs are unresolved blends at 1″ linking length.
    while (static_cast<int>(stars.size()) < nStars) {
        auto p = SpherePoint::fromDegrees(150.0 + uni(rng), 2.0 + uni(rng));
        bool isolated = std::all_of(stars.begin(), stars.end(), [&](const SpherePoint& q) {
            return q.separation(p) > arcseconds(5.0);
        });
        if (isolated) stars.push_back(p);
    }
    Detections d;
    std::int64_t id = 100;
    for (int v = 0; v < nVisits; ++v)
        for (int s = 0; s < nStars; ++s) {
            if ((s + v) % 5 == 0) continue;  // not every star in every visit
            double cd = std::cos(stars[s].dec().asRadians());
            d.sky.push_back(SpherePoint::fromDegrees(stars[s].ra().asDegrees() + noise(rng) / cd,
                                                     stars[s].dec().asDegrees() + noise(rng)));
            d.key.push_back(id++);
            d.visit.push_back(v);
            d.truth.push_back(s);
        }
    return d;
}

TEST(Matching, NeighbourIndexAgreesWithBruteForce) {
    Detections d = makeDetections(300, 2, 1);
    Angle radius = arcseconds(20.0);
    SphereNeighborIndex index(d.sky, radius);
    for (std::size_t i = 0; i < d.sky.size(); i += 17) {
        std::vector<std::size_t> brute;
        for (std::size_t j = 0; j < d.sky.size(); ++j)
            if (d.sky[i].separation(d.sky[j]) <= radius) brute.push_back(j);
        EXPECT_EQ(index.within(d.sky[i]), brute);
    }
}

TEST(Matching, NearestIsOneToOne) {
    std::vector<SpherePoint> a{SpherePoint::fromDegrees(10, 10),
                               SpherePoint::fromDegrees(10, 10 + 0.5 / 3600)};
    std::vector<SpherePoint> b{SpherePoint::fromDegrees(10, 10 + 0.1 / 3600)};
    auto m = matchNearest(a, b, arcseconds(1.0));
    ASSERT_EQ(m.size(), 1u);  // both a's want b[0]; the closer one (a[0]) gets it
    EXPECT_EQ(m[0].a, 0u);
    EXPECT_NEAR(m[0].separation.asArcseconds(), 0.1, 1e-6);
}

TEST(Matching, AssociationRecoversStarsAndIsOrderIndependent) {
    Detections d = makeDetections(400, 5, 2);
    AssociationConfig cfg;  // 1″
    Association a = associateDetections(d.sky, d.key, d.visit, cfg);
    // Truth: each star is one object (stars ≥ 5″ apart, 30 mas noise: no chains at 1″).
    std::map<std::int64_t, std::set<std::int64_t>> objectsPerStar, starsPerObject;
    for (std::size_t i = 0; i < d.sky.size(); ++i) {
        ASSERT_GE(a.objectId[i], 0);
        objectsPerStar[d.truth[i]].insert(a.objectId[i]);
        starsPerObject[a.objectId[i]].insert(d.truth[i]);
    }
    for (auto& [s, o] : objectsPerStar) EXPECT_EQ(o.size(), 1u) << "star " << s;
    for (auto& [o, s] : starsPerObject) EXPECT_EQ(s.size(), 1u) << "object " << o;
    EXPECT_EQ(a.numObjects, 400u);
    EXPECT_EQ(a.numConflicted, 0u);

    // Permuted input -> identical ids per detection.
    std::vector<std::size_t> perm(d.sky.size());
    std::iota(perm.begin(), perm.end(), std::size_t{0});
    std::mt19937_64 rng(5);
    std::shuffle(perm.begin(), perm.end(), rng);
    Detections p;
    for (auto k : perm) {
        p.sky.push_back(d.sky[k]);
        p.key.push_back(d.key[k]);
        p.visit.push_back(d.visit[k]);
    }
    Association b = associateDetections(p.sky, p.key, p.visit, cfg);
    for (std::size_t k = 0; k < perm.size(); ++k) ASSERT_EQ(b.objectId[k], a.objectId[perm[k]]);
}

TEST(Matching, ConflictsAndSingletons) {
    // Two detections 0.5″ apart in the same visit chain into one conflicted object; an isolated
    // single detection is not an object with minDetections = 2.
    std::vector<SpherePoint> sky{SpherePoint::fromDegrees(20, -30),
                                 SpherePoint::fromDegrees(20, -30 + 0.5 / 3600),
                                 SpherePoint::fromDegrees(21, -30)};
    Association a = associateDetections(sky, {5, 3, 9}, {1, 1, 1}, AssociationConfig{});
    EXPECT_EQ(a.objectId, (std::vector<std::int64_t>{3, 3, -1}));
    EXPECT_EQ(a.numObjects, 1u);
    EXPECT_EQ(a.numConflicted, 1u);
}

TEST(Matching, TableFormAndBadInput) {
    Table t;
    t.addColumn<double>("ra") = {10.0, 10.0};
    t.addColumn<double>("dec") = {0.0, 0.1 / 3600};
    t.addColumn<std::int64_t>("source_id") = {7, 8};
    t.addColumn<std::int32_t>("visit") = {1, 2};
    Association a = associateDetections(t, AssociationConfig{});
    EXPECT_EQ(a.objectId, (std::vector<std::int64_t>{7, 7}));
    AssociationConfig bad;
    bad.radius = arcseconds(-1);
    EXPECT_THROW(associateDetections(t, bad), Error);
}

}  // namespace
}  // namespace drp
