// SpanSet/Footprint set operations and atomic file commits (+ SHA-256 against FIPS vectors).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "drp/core/atomic_file.h"
#include "drp/core/footprint.h"

using namespace drp;
namespace fs = std::filesystem;

TEST(SpanSet, BuildMergeContain) {
    SpanSet s({{0, 5, 7}, {0, 8, 9}, {1, 0, 2}, {0, 1, 2}});
    ASSERT_EQ(s.spans().size(), 3u);  // {0,1,2} {0,5,9} {1,0,2}
    EXPECT_EQ(s.area(), 2 + 5 + 3);
    EXPECT_TRUE(s.contains({9, 0}));
    EXPECT_FALSE(s.contains({4, 0}));
    EXPECT_FALSE(s.contains({3, 1}));
    EXPECT_EQ(s.bbox(), Box2I::fromCorners({0, 0}, {9, 1}));
}

TEST(SpanSet, DilateIsDisk) {
    SpanSet p({{0, 0, 0}});
    SpanSet d = p.dilated(3);
    // Lattice points inside a radius-3 disk: 29.
    EXPECT_EQ(d.area(), 29);
    EXPECT_TRUE(d.contains({3, 0}));
    EXPECT_FALSE(d.contains({3, 1}));
    EXPECT_TRUE(d.contains({2, 2}));
}

TEST(SpanSet, FromNonZeroAndIntersection) {
    Image<int> m(Box2I({10, 10}, {5, 3}), 0);
    m(1, 0) = m(2, 0) = m(4, 2) = 1;
    SpanSet s = SpanSet::fromNonZero<int>(m.cview());
    EXPECT_EQ(s.area(), 3);
    EXPECT_TRUE(s.contains({11, 10}));
    EXPECT_TRUE(s.contains({14, 12}));
    SpanSet box = SpanSet::fromBox(Box2I({12, 10}, {3, 3}));
    EXPECT_EQ(s.intersectionWith(box).area(), 2);
    EXPECT_EQ(s.unionWith(box).area(), 10);
}

TEST(Sha256, FipsVectors) {
    EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(AtomicFile, CommitOrNothing) {
    fs::path dir = fs::temp_directory_path() / "drp_atomic_test";
    fs::remove_all(dir);
    std::string target = (dir / "sub" / "out.txt").string();
    {
        AtomicFile f(target);
        std::ofstream(f.tempPath()) << "partial";
        // no commit: destructor removes the temporary, the target never appears
    }
    EXPECT_FALSE(fs::exists(target));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir / "sub"), fs::directory_iterator{}), 0);
    {
        AtomicFile f(target);
        std::ofstream(f.tempPath()) << "abc";
        f.commit();
    }
    EXPECT_EQ(sha256File(target), sha256Hex("abc"));
    fs::remove_all(dir);
}
