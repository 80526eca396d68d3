// FITS binary tables: exact round trip, and the same table through astropy and back.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include "drp/core/error.h"
#include "drp/io/fits.h"
#include "fits_test_support.h"

using namespace drp;
using drp::testing::ScratchDir;

namespace {

Table exampleTable() {
    Table t;
    auto& id =
        t.addColumn<std::int64_t>("object_id", "", "Unique object id (tract, patch, counter)");
    auto& ra = t.addColumn<double>("ra", "deg", "Right ascension (ICRS)");
    auto& flux = t.addColumn<float>("r_psf_flux", "nJy", "PSF flux in r");
    auto& n = t.addColumn<std::int32_t>("n_children", "", "Number of deblended children");
    auto& primary =
        t.addColumn<Bool>("is_primary", "",
                          "True for objects in the inner region of their patch and tract and "
                          "not a deblended parent; this description is longer than one card");
    auto& name = t.addColumn<std::string>("name", "", "A string column");
    const std::vector<std::string> names = {"a", "", "O'Brien", "longer string value", "x"};
    for (int i = 0; i < 5; ++i) {
        id.push_back((std::int64_t(1) << 40) + i);
        ra.push_back(150.0 + i * 1e-7 + 0.1);
        flux.push_back(i == 2 ? std::numeric_limits<float>::quiet_NaN() : 1.5f * i);
        n.push_back(-i);
        primary.push_back(i % 2 == 0);
        name.push_back(names[static_cast<std::size_t>(i)]);
    }
    t.metadata().set("SURVEY", "drp-test", "survey name");
    t.metadata().set("NOBJ", 5, "rows");
    t.metadata().set("LONGNOTE", std::string(100, 'n'), "long string metadata");
    return t;
}

/// Equality with NaN == NaN (bit patterns are compared for floats).
void expectSameColumns(const Table& a, const Table& b, bool descriptions) {
    ASSERT_EQ(a.columns().size(), b.columns().size());
    ASSERT_EQ(a.numRows(), b.numRows());
    for (std::size_t k = 0; k < a.columns().size(); ++k) {
        const Column& x = a.columns()[k];
        const Column& y = b.columns()[k];
        EXPECT_EQ(x.name, y.name);
        EXPECT_EQ(x.unit, y.unit) << x.name;
        EXPECT_EQ(x.type(), y.type()) << x.name;
        if (descriptions) {
            EXPECT_EQ(x.description, y.description) << x.name;
        }
        if (x.type() == ColumnType::Float32) {
            const auto& u = std::get<std::vector<float>>(x.data);
            const auto& v = std::get<std::vector<float>>(y.data);
            for (std::size_t i = 0; i < u.size(); ++i)
                EXPECT_TRUE(u[i] == v[i] || (std::isnan(u[i]) && std::isnan(v[i])))
                    << x.name << " " << i;
        } else {
            EXPECT_EQ(x.data, y.data) << x.name;
        }
    }
}

}  // namespace

TEST(FitsTable, RoundTrip) {
    ScratchDir dir("fits_table");
    Table t = exampleTable();
    PropertyList prov;
    prov.set("DRPVERS", "1.0");
    std::string path = dir.file("t.fits");
    fits::writeTable(path, t, prov, "OBJECT");
    Table back = fits::readTable(path);
    expectSameColumns(t, back, true);
    EXPECT_EQ(back.metadata(), t.metadata());
    EXPECT_EQ(fits::readHeader(path, 0).metadata.get<std::string>("DRPVERS"), "1.0");
    // Column selection, by EXTNAME.
    Table some = fits::readTable(path, std::string("OBJECT"), {"name", "ra"});
    ASSERT_EQ(some.columns().size(), 2u);
    EXPECT_EQ(some.columns()[0].name, "name");
    EXPECT_EQ(some.column<double>("ra"), t.column<double>("ra"));
    try {
        fits::readTable(path, 1, {"nope"});
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.errorClass(), "not_found");
        EXPECT_NE(e.message().find("nope"), std::string::npos);
    }
    // Empty table.
    Table empty;
    empty.addColumn<double>("x", "deg", "nothing");
    empty.addColumn<std::string>("s");
    fits::writeTable(dir.file("e.fits"), empty);
    Table eback = fits::readTable(dir.file("e.fits"));
    EXPECT_EQ(eback.numRows(), 0u);
    EXPECT_EQ(eback.columns()[0].unit, "deg");
}

TEST(FitsTable, ThroughAstropy) {
    if (drp::testing::python().empty()) GTEST_SKIP() << "DRP_PYTHON not set";
    ScratchDir dir("fits_table_astropy");
    Table t = exampleTable();
    std::string path = dir.file("t.fits"), again = dir.file("astropy.fits");
    fits::writeTable(path, t);
    auto lines =
        drp::testing::runLines(drp::testing::python() + " " + drp::testing::sourceDir() +
                               "/io/tests/fits_astropy_check.py table " + path + " " + again);
    std::map<std::string, std::vector<std::string>> cols;
    std::map<std::string, std::string> other;
    for (const auto& l : lines) {
        if (l.rfind("col ", 0) == 0) {
            std::vector<std::string> parts;
            std::stringstream ss(l.substr(4));
            std::string p;
            while (std::getline(ss, p, '|')) parts.push_back(p);
            while (parts.size() < 4) parts.push_back("");
            cols[parts[0]] = parts;
        } else {
            auto sp = l.find(' ', l.find(' ') + 1);
            other[l.substr(0, sp)] = sp == std::string::npos ? "" : l.substr(sp + 1);
        }
    }
    ASSERT_EQ(cols.size(), t.columns().size());
    EXPECT_EQ(cols["object_id"][1], "i8");
    EXPECT_EQ(cols["ra"][1], "f8");
    EXPECT_EQ(cols["ra"][2], "deg");
    EXPECT_EQ(cols["r_psf_flux"][1], "f4");
    EXPECT_EQ(cols["r_psf_flux"][2], "nJy");
    EXPECT_EQ(cols["n_children"][1], "i4");
    EXPECT_EQ(cols["is_primary"][1], "b1");
    EXPECT_EQ(cols["name"][1].substr(0, 1), "S");  // or U: astropy keeps FITS strings as bytes
    EXPECT_EQ(cols["ra"][3], "Right ascension (ICRS)");
    EXPECT_EQ(other["rows 5"], "");
    EXPECT_EQ(other["meta SURVEY"], "drp-test");
    EXPECT_EQ(other["meta LONGNOTE"], std::string(100, 'n'));
    // What astropy wrote back reads into the same table (descriptions are not astropy's to keep).
    Table back = fits::readTable(again);
    expectSameColumns(t, back, false);
}
