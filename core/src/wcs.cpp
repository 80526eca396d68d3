// Wcs: a thin, thread-compatible C++ face on WCSLIB (Calabretta & Greisen 2002, WCS Papers I-IV).
//
// Every Wcs, including the ones drp makes itself (makeTan/makeTanSip), is defined by FITS header
// cards parsed with WCSLIB's wcspih(); all pixel<->sky maths is WCSLIB's. What lives here:
//   * writing canonical TAN / TAN-SIP cards (so that what we make is exactly what we write);
//   * choosing the celestial WCS in a header and checking it is equatorial;
//   * a pool of parsed `wcsprm` structs, because WCSLIB keeps scratch memory inside them and so
//     one struct may not be used by two threads at once (see the thread note below);
//   * a Newton polish of WCSLIB's sky->pixel inverse when the WCS has distortions, so that
//     pixel->sky->pixel round-trips to ~1e-11 pixel (WCSLIB's own disx2p() inversion stops at a
//     looser tolerance);
//   * the local linearisation (finite differences of WCSLIB's forward map, expressed as
//     gnomonic offsets east/north of the point).
//
// Thread note. wcsp2s/wcss2p/linp2x write to scratch arrays inside wcsprm/linprm/disprm, so a
// struct is handed to one caller at a time. Measured on the development machine (-O2): one
// TAN-SIP pixel->sky ~0.2 µs, sky->pixel with the Newton polish ~0.45 µs; a fresh parsed copy
// per call (wcspih + wcssub + wcsset) ~36 µs, i.e. 150x a transform, so per-call copies are
// out; a single mutex around the transform would serialise every thread on one struct. Used
// instead: a pool of parsed structs, taken and returned under a mutex held only for a vector
// push/pop (~3 ns uncontended), so N concurrent callers transform in parallel on N structs.
// The pool grows to the peak number of concurrent callers and never shrinks.
#include "drp/core/wcs.h"

#include <wcslib/dis.h>
#include <wcslib/lin.h>
#include <wcslib/wcs.h>
#include <wcslib/wcserr.h>
#include <wcslib/wcshdr.h>
#include <Eigen/LU>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <numbers>
#include <optional>
#include <sstream>

#include "drp/core/error.h"

namespace drp {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// WCSLIB implements SIP through its TPD polynomial, which stops at degree 9 (dis.h).
constexpr int kMaxSipOrder = 9;

// wcspih's flex scanner keeps no global state in WCSLIB 7, but the error-message switch is
// process-global; both are set up once. Parsing is rare, so it is also serialised for safety.
std::mutex& parseMutex() {
    static std::mutex m;
    return m;
}

void enableWcslibErrors() {
    static std::once_flag once;
    std::call_once(once, [] { wcserr_enable(1); });
}

std::string wcslibMessage(const wcsprm& w, int status) {
    if (w.err != nullptr && w.err->msg != nullptr && w.err->msg[0] != '\0') return w.err->msg;
    if (status > 0 && status <= WCSERR_BAD_WORLD_COORD) return wcs_errmsg[status];
    return "WCSLIB status " + std::to_string(status);
}

// ---- FITS card formatting (canonical TAN / TAN-SIP headers) ---------------------------------

/// Shortest decimal text that reads back as exactly `v`, in a FITS-legal real format.
std::string formatReal(double v) {
    if (!std::isfinite(v)) throw logicError("cannot write a non-finite value to a FITS WCS card");
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), v);
    std::string s(buf, res.ptr);
    auto e = s.find('e');
    if (e != std::string::npos) s[e] = 'E';
    if (s.find('.') == std::string::npos) {
        // FITS reals carry a decimal point; "1E-05" -> "1.0E-05", "150" -> "150.0".
        e = s.find('E');
        if (e == std::string::npos)
            s += ".0";
        else
            s.insert(e, ".0");
    }
    return s;
}

std::string card(const std::string& key, const std::string& value, bool isString,
                 const std::string& comment) {
    std::string c = key;
    c.resize(8, ' ');
    c += "= ";
    if (isString) {
        std::string v = "'" + value;
        while (v.size() < 9) v += ' ';  // strings are padded to at least 8 characters
        v += "'";
        c += v;
    } else {
        std::string v = value;
        if (v.size() < 20) v.insert(0, 20 - v.size(), ' ');  // right-justified to column 30
        c += v;
    }
    if (!comment.empty() && c.size() + 3 < 80) c += " / " + comment;
    c.resize(80, ' ');
    return c;
}

std::string realCard(const std::string& key, double v, const std::string& comment = {}) {
    return card(key, formatReal(v), false, comment);
}
std::string intCard(const std::string& key, long v, const std::string& comment = {}) {
    return card(key, std::to_string(v), false, comment);
}
std::string strCard(const std::string& key, const std::string& v, const std::string& comment = {}) {
    return card(key, v, true, comment);
}

/// The parameters of a TAN or TAN-SIP WCS exactly as they appear in FITS (degrees; CRPIX
/// 1-based), so that writing them and parsing them back is the identity.
struct CanonicalParams {
    double crval[2] = {0, 0};
    double crpix[2] = {0, 0};  // FITS, 1-based
    double cd[2][2] = {{0, 0}, {0, 0}};
    std::optional<SipCoefficients> sip;
};

std::string canonicalHeader(const CanonicalParams& p) {
    const bool hasSip = p.sip.has_value();
    std::string h;
    h += intCard("WCSAXES", 2, "number of World Coordinate System axes");
    h += strCard("CTYPE1", hasSip ? "RA---TAN-SIP" : "RA---TAN", "gnomonic projection");
    h += strCard("CTYPE2", hasSip ? "DEC--TAN-SIP" : "DEC--TAN", "gnomonic projection");
    h += strCard("CUNIT1", "deg");
    h += strCard("CUNIT2", "deg");
    h += realCard("CRVAL1", p.crval[0], "[deg] RA at the reference pixel");
    h += realCard("CRVAL2", p.crval[1], "[deg] Dec at the reference pixel");
    h += realCard("CRPIX1", p.crpix[0], "reference pixel (1-based; drp x + 1)");
    h += realCard("CRPIX2", p.crpix[1], "reference pixel (1-based; drp y + 1)");
    h += realCard("CD1_1", p.cd[0][0], "[deg/pixel]");
    h += realCard("CD1_2", p.cd[0][1], "[deg/pixel]");
    h += realCard("CD2_1", p.cd[1][0], "[deg/pixel]");
    h += realCard("CD2_2", p.cd[1][1], "[deg/pixel]");
    h += strCard("RADESYS", "ICRS");
    if (hasSip) {
        const SipCoefficients& s = *p.sip;
        // Shupe et al. 2005, "The SIP Convention for Representing Distortion in FITS Image
        // Headers": forward terms with 2 <= p+q <= order; inverse terms with p+q <= order.
        auto terms = [&](const char* name, const Eigen::MatrixXd& m, int order, int minDegree) {
            for (int pp = 0; pp <= order; ++pp)
                for (int q = 0; q <= order - pp; ++q)
                    if (pp + q >= minDegree)
                        h += realCard(
                            std::string(name) + "_" + std::to_string(pp) + "_" + std::to_string(q),
                            m(pp, q));
        };
        h += intCard("A_ORDER", s.order, "SIP forward polynomial order");
        terms("A", s.a, s.order, 2);
        h += intCard("B_ORDER", s.order, "SIP forward polynomial order");
        terms("B", s.b, s.order, 2);
        if (s.inverseOrder > 0) {
            h += intCard("AP_ORDER", s.inverseOrder, "SIP inverse polynomial order");
            terms("AP", s.ap, s.inverseOrder, 1);
            h += intCard("BP_ORDER", s.inverseOrder, "SIP inverse polynomial order");
            terms("BP", s.bp, s.inverseOrder, 1);
        }
    }
    return h;
}

/// Integer value of `key` in a header of 80-character cards, if present (used only for SIP's
/// A_ORDER / AP_ORDER, which WCSLIB deliberately does not keep).
std::optional<int> findIntCard(const std::string& cards, const std::string& key) {
    for (std::size_t i = 0; i + 80 <= cards.size(); i += 80) {
        std::string_view c(cards.data() + i, 80);
        if (c.substr(0, key.size()) != key) continue;
        std::string_view rest = c.substr(key.size());
        std::size_t k = 0;
        while (k < rest.size() && rest[k] == ' ') ++k;
        if (k >= rest.size() || rest[k] != '=') continue;
        ++k;
        while (k < rest.size() && rest[k] == ' ') ++k;
        int v = 0;
        auto res = std::from_chars(rest.data() + k, rest.data() + rest.size(), v);
        if (res.ec == std::errc()) return v;
    }
    return std::nullopt;
}

// ---- parsed WCSLIB structs ------------------------------------------------------------------

/// One parsed, set-up, 2-axis celestial wcsprm, owned.
struct Prm {
    wcsprm w;
    Prm() {
        std::memset(&w, 0, sizeof(w));
        w.flag = -1;  // "not initialised" for wcssub(alloc=1, ...)
    }
    ~Prm() { wcsfree(&w); }
    Prm(const Prm&) = delete;
    Prm& operator=(const Prm&) = delete;
};

struct ParsedArray {
    int nwcs = 0;
    wcsprm* wcs = nullptr;
    ~ParsedArray() {
        if (wcs != nullptr) wcsvfree(&nwcs, &wcs);
    }
};

/// Parse `cards` and return the primary celestial WCS (or the first alternate one if the
/// primary has no celestial axes), reduced to its (longitude, latitude) axes and set up.
std::unique_ptr<Prm> parseCelestial(const std::string& cards, const std::string& source,
                                    std::string* rawCtype1) {
    enableWcslibErrors();
    if (cards.empty() || cards.size() % 80 != 0)
        throw badInput(source + ": FITS header is not a whole number of 80-character cards (" +
                       std::to_string(cards.size()) + " characters)");
    std::vector<char> buf(cards.begin(), cards.end());
    buf.push_back('\0');
    ParsedArray arr;
    int nreject = 0;
    {
        std::lock_guard lock(parseMutex());
        int status = wcspih(buf.data(), static_cast<int>(cards.size() / 80), WCSHDR_all, 0,
                            &nreject, &arr.nwcs, &arr.wcs);
        if (status != 0)
            throw badInput(
                source + ": WCSLIB could not parse the FITS header: " +
                (status < 6 ? wcshdr_errmsg[status] : "status " + std::to_string(status)));
    }
    // Primary (alt ' ') first, then alternates in header order.
    std::vector<int> order;
    for (int i = 0; i < arr.nwcs; ++i)
        if (arr.wcs[i].alt[0] == ' ' || arr.wcs[i].alt[0] == '\0')
            order.insert(order.begin(), i);
        else
            order.push_back(i);
    std::string why = "no WCS keywords";
    for (int i : order) {
        wcsprm& src = arr.wcs[i];
        int nsub = 2;
        int axes[2] = {WCSSUB_LONGITUDE, WCSSUB_LATITUDE};
        auto prm = std::make_unique<Prm>();
        int status = wcssub(1, &src, &nsub, axes, &prm->w);
        if (status != 0) {
            why = wcslibMessage(prm->w, status);
            continue;
        }
        if (nsub != 2) {
            why = "the WCS has no celestial longitude/latitude axis pair (CTYPE1 = '" +
                  std::string(src.ctype[0]) + "')";
            continue;
        }
        std::string ctype1 = prm->w.ctype[0];
        status = wcsset(&prm->w);
        if (status != 0) {
            why = "WCSLIB rejected the celestial WCS: " + wcslibMessage(prm->w, status);
            continue;
        }
        std::string lngtyp = prm->w.lngtyp, lattyp = prm->w.lattyp;
        if (lngtyp != "RA" || lattyp != "DEC")
            throw badInput(source + ": the celestial WCS is " + lngtyp + "/" + lattyp +
                           ", not equatorial RA/DEC");
        std::string radesys = prm->w.radesys;
        if (radesys.rfind("FK4", 0) == 0)
            throw badInput(source + ": RADESYS = '" + radesys +
                           "' (B1950 FK4) is not supported; drp works in ICRS");
        if (rawCtype1 != nullptr) *rawCtype1 = ctype1;
        return prm;
    }
    throw badInput(source + ": no valid celestial WCS in the FITS header: " + why);
}

/// SIP coefficients from a parsed TAN-SIP wcsprm (WCSLIB keeps them as 'SIP.FWD.p_q' /
/// 'SIP.REV.p_q' records of its prior distortion, DP1 for A/AP and DP2 for B/BP).
SipCoefficients extractSip(const wcsprm& w, const std::string& cards) {
    const disprm* dis = w.lin.dispre;
    SipCoefficients s;
    if (dis == nullptr) return s;
    struct Term {
        bool forward;
        int axis, p, q;
        double value;
    };
    std::vector<Term> terms;
    int maxFwd = 0, maxRev = 0;
    for (int k = 0; k < dis->ndp; ++k) {
        const dpkey& dp = dis->dp[k];
        std::string field = dp.field;
        auto pos = field.find("SIP.");
        if (pos == std::string::npos) continue;
        std::string rest = field.substr(pos + 4);  // "FWD.p_q"
        bool forward = rest.rfind("FWD.", 0) == 0;
        if (!forward && rest.rfind("REV.", 0) != 0) continue;
        int p = 0, q = 0;
        if (std::sscanf(rest.c_str() + 4, "%d_%d", &p, &q) != 2) continue;
        terms.push_back({forward, dp.j, p, q, dpkeyd(&dp)});
        (forward ? maxFwd : maxRev) = std::max(forward ? maxFwd : maxRev, p + q);
    }
    s.order = findIntCard(cards, "A_ORDER").value_or(maxFwd);
    s.inverseOrder = findIntCard(cards, "AP_ORDER").value_or(maxRev);
    s.order = std::max(s.order, maxFwd);
    s.inverseOrder = std::max(s.inverseOrder, maxRev);
    s.a = s.b = Eigen::MatrixXd::Zero(s.order + 1, s.order + 1);
    if (s.inverseOrder > 0)
        s.ap = s.bp = Eigen::MatrixXd::Zero(s.inverseOrder + 1, s.inverseOrder + 1);
    for (const Term& t : terms) {
        Eigen::MatrixXd& m = t.forward ? (t.axis == 1 ? s.a : s.b) : (t.axis == 1 ? s.ap : s.bp);
        m(t.p, t.q) = t.value;
    }
    return s;
}

void validateSip(const SipCoefficients& s) {
    auto bad = [](const std::string& what) { return configError("SipCoefficients: " + what); };
    if (s.order < 2 || s.order > kMaxSipOrder)
        throw bad("order = " + std::to_string(s.order) + " must be in [2, " +
                  std::to_string(kMaxSipOrder) + "]");
    if (s.inverseOrder != 0 && (s.inverseOrder < 1 || s.inverseOrder > kMaxSipOrder))
        throw bad("inverseOrder = " + std::to_string(s.inverseOrder) + " must be 0 or in [1, " +
                  std::to_string(kMaxSipOrder) + "]");
    auto check = [&](const char* name, const Eigen::MatrixXd& m, int order, int minDegree) {
        if (m.rows() != order + 1 || m.cols() != order + 1)
            throw bad(std::string(name) + " is " + std::to_string(m.rows()) + "x" +
                      std::to_string(m.cols()) + ", expected " + std::to_string(order + 1) + "x" +
                      std::to_string(order + 1));
        for (int p = 0; p <= order; ++p)
            for (int q = 0; q <= order; ++q) {
                if (!std::isfinite(m(p, q)))
                    throw bad(std::string(name) + "(" + std::to_string(p) + "," +
                              std::to_string(q) + ") is not finite");
                bool allowed = p + q >= minDegree && p + q <= order;
                if (!allowed && m(p, q) != 0.0)
                    throw bad(std::string(name) + "(" + std::to_string(p) + "," +
                              std::to_string(q) + ") = " + formatReal(m(p, q)) +
                              " must be zero: only terms with " + std::to_string(minDegree) +
                              " <= p+q <= " + std::to_string(order) +
                              " exist (linear terms belong in CD)");
            }
    };
    check("a", s.a, s.order, 2);
    check("b", s.b, s.order, 2);
    if (s.inverseOrder > 0) {
        // WCSLIB's TPD has no constant term for SIP's inverse (dis.h), so AP_0_0 cannot be
        // represented; the inverse is only WCSLIB's starting guess anyway.
        check("ap", s.ap, s.inverseOrder, 1);
        check("bp", s.bp, s.inverseOrder, 1);
    }
}

/// FITS cards for a set-up wcsprm written by WCSLIB (full 17-digit precision).
std::string writeWithWcslib(wcsprm& w, const std::string& source) {
    int nkeyrec = 0;
    char* header = nullptr;
    int status = wcshdo(WCSHDO_safe | WCSHDO_P17, &w, &nkeyrec, &header);
    if (status != 0) {
        std::free(header);
        throw Error(error_class::kLogic,
                    source + ": WCSLIB could not write the header: " + wcslibMessage(w, status));
    }
    std::string out(header, static_cast<std::size_t>(nkeyrec) * 80);
    std::free(header);
    return out;
}

/// Gnomonic (tangent-plane) offsets of unit vector `v` from the point `p0` with local east `e`
/// and north `n`, in radians: the standard "standard coordinates" (xi, eta).
std::array<double, 2> tangentOffsets(const std::array<double, 3>& v,
                                     const std::array<double, 3>& p0,
                                     const std::array<double, 3>& e,
                                     const std::array<double, 3>& n) {
    auto dot = [](const std::array<double, 3>& a, const std::array<double, 3>& b) {
        return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    };
    double d = dot(v, p0);
    return {dot(v, e) / d, dot(v, n) / d};
}

}  // namespace

// ---- Impl -----------------------------------------------------------------------------------

struct Wcs::Impl {
    std::string cards;       // what every pooled wcsprm is parsed from
    std::string source;      // for error messages
    std::string projection;  // "TAN", "TAN-SIP", "TPV", ...
    bool canonical = false;  // TAN/TAN-SIP with nothing else: written by canonicalHeader()
    bool distorted = false;  // WCSLIB applies a distortion: polish the inverse
    CanonicalParams params;  // crval/crpix/cd (and SIP) exactly as in FITS

    mutable std::mutex poolMutex;
    mutable std::vector<std::unique_ptr<Prm>> pool;

    /// A pooled wcsprm, returned to the pool when the lease ends.
    class Lease {
      public:
        explicit Lease(const Impl& impl) : _impl(impl) {
            {
                std::lock_guard lock(_impl.poolMutex);
                if (!_impl.pool.empty()) {
                    _prm = std::move(_impl.pool.back());
                    _impl.pool.pop_back();
                }
            }
            if (!_prm) _prm = parseCelestial(_impl.cards, _impl.source, nullptr);
        }
        ~Lease() {
            std::lock_guard lock(_impl.poolMutex);
            _impl.pool.push_back(std::move(_prm));
        }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        wcsprm* operator->() { return &_prm->w; }
        wcsprm* get() { return &_prm->w; }

      private:
        const Impl& _impl;
        std::unique_ptr<Prm> _prm;
    };
};

Wcs::Wcs(std::unique_ptr<Impl> impl) : _impl(std::move(impl)) {}
Wcs::~Wcs() = default;

std::shared_ptr<const Wcs> Wcs::fromFitsHeader(const std::string& cards,
                                               const std::string& source) {
    auto impl = std::make_unique<Impl>();
    impl->cards = cards;
    impl->source = source;
    std::string ctype1;
    std::unique_ptr<Prm> prm = parseCelestial(cards, source, &ctype1);
    const wcsprm& w = prm->w;
    impl->projection = ctype1.size() > 5 ? ctype1.substr(5) : ctype1;
    while (!impl->projection.empty() && impl->projection.back() == ' ') impl->projection.pop_back();
    while (!impl->projection.empty() && impl->projection.front() == '-')
        impl->projection.erase(impl->projection.begin());
    impl->distorted = !w.lin.affine;

    CanonicalParams& p = impl->params;
    p.crval[0] = w.crval[0];
    p.crval[1] = w.crval[1];
    p.crpix[0] = w.crpix[0];
    p.crpix[1] = w.crpix[1];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) p.cd[i][j] = w.lin.piximg[i * 2 + j];
    if (impl->projection == "TAN-SIP") p.sip = extractSip(w, cards);
    // Our own writer reproduces exactly what WCSLIB parsed only for plain TAN/TAN-SIP with the
    // default native pole and no projection parameters; anything else goes through wcshdo().
    bool plainTan = (impl->projection == "TAN" || impl->projection == "TAN-SIP") && w.npv == 0 &&
                    w.lonpole == 180.0 && (w.lin.disseq == nullptr);
    impl->canonical = plainTan;
    impl->pool.push_back(std::move(prm));
    return std::shared_ptr<const Wcs>(new Wcs(std::move(impl)));
}

namespace {

CanonicalParams tanParams(const SpherePoint& crval, Point2D crpix, const Eigen::Matrix2d& cd,
                          const char* what) {
    if (!cd.allFinite() || std::abs(cd.determinant()) == 0.0 || !std::isfinite(crpix.x) ||
        !std::isfinite(crpix.y) || !std::isfinite(crval.ra().asRadians()) ||
        !std::isfinite(crval.dec().asRadians()))
        throw configError(std::string(what) +
                          ": CD must be finite and invertible, CRPIX and CRVAL finite");
    CanonicalParams p;
    p.crval[0] = crval.ra().asDegrees();
    p.crval[1] = crval.dec().asDegrees();
    p.crpix[0] = crpix.x + 1.0;  // drp 0-based -> FITS 1-based
    p.crpix[1] = crpix.y + 1.0;
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) p.cd[i][j] = cd(i, j);
    return p;
}

}  // namespace

std::shared_ptr<const Wcs> Wcs::makeTan(SpherePoint crval, Point2D crpix,
                                        const Eigen::Matrix2d& cd) {
    return fromFitsHeader(canonicalHeader(tanParams(crval, crpix, cd, "Wcs::makeTan")),
                          "Wcs::makeTan");
}

std::shared_ptr<const Wcs> Wcs::makeTanSip(SpherePoint crval, Point2D crpix,
                                           const Eigen::Matrix2d& cd, const SipCoefficients& sip) {
    CanonicalParams p = tanParams(crval, crpix, cd, "Wcs::makeTanSip");
    validateSip(sip);
    p.sip = sip;
    return fromFitsHeader(canonicalHeader(p), "Wcs::makeTanSip");
}

std::vector<SpherePoint> Wcs::pixelToSky(const std::vector<Point2D>& pixels) const {
    const std::size_t n = pixels.size();
    std::vector<SpherePoint> out(n);
    if (n == 0) return out;
    std::vector<double> pix(2 * n), img(2 * n), world(2 * n), phi(n), theta(n);
    std::vector<int> stat(n);
    for (std::size_t i = 0; i < n; ++i) {
        pix[2 * i] = pixels[i].x + 1.0;  // drp 0-based -> FITS 1-based
        pix[2 * i + 1] = pixels[i].y + 1.0;
    }
    Impl::Lease w(*_impl);
    int status = wcsp2s(w.get(), static_cast<int>(n), 2, pix.data(), img.data(), phi.data(),
                        theta.data(), world.data(), stat.data());
    if (status != 0 && status != 8)  // 8: some pixels invalid -> NaN for those
        throw Error(error_class::kNumerical,
                    _impl->source + ": pixel->sky failed: " + wcslibMessage(*w.get(), status));
    for (std::size_t i = 0; i < n; ++i) {
        if (stat[i] != 0 || !std::isfinite(world[2 * i]) || !std::isfinite(world[2 * i + 1]))
            out[i] = SpherePoint(degrees(kNaN), degrees(kNaN));
        else
            out[i] = SpherePoint::fromDegrees(world[2 * i], world[2 * i + 1]);
    }
    return out;
}

SpherePoint Wcs::pixelToSky(Point2D pixel) const {
    return pixelToSky(std::vector<Point2D>{pixel})[0];
}

std::vector<Point2D> Wcs::skyToPixel(const std::vector<SpherePoint>& sky) const {
    const std::size_t n = sky.size();
    std::vector<Point2D> out(n);
    if (n == 0) return out;
    std::vector<double> pix(2 * n), img(2 * n), world(2 * n), phi(n), theta(n);
    std::vector<int> stat(n);
    for (std::size_t i = 0; i < n; ++i) {
        world[2 * i] = sky[i].ra().asDegrees();
        world[2 * i + 1] = sky[i].dec().asDegrees();
    }
    Impl::Lease w(*_impl);
    int status = wcss2p(w.get(), static_cast<int>(n), 2, world.data(), phi.data(), theta.data(),
                        img.data(), pix.data(), stat.data());
    if (status != 0 && status != 9)  // 9: some sky points invalid (e.g. behind the tangent plane)
        throw Error(error_class::kNumerical,
                    _impl->source + ": sky->pixel failed: " + wcslibMessage(*w.get(), status));
    for (std::size_t i = 0; i < n; ++i) {
        double* p = &pix[2 * i];
        if (stat[i] != 0 || !std::isfinite(p[0]) || !std::isfinite(p[1])) {
            out[i] = Point2D(kNaN, kNaN);
            continue;
        }
        if (_impl->distorted) {
            // Newton on the forward pixel -> intermediate-world map (WCSLIB's linp2x, which
            // includes the distortion) towards the target intermediate coordinates `img` that
            // WCSLIB computed exactly from the sky point. The Jacobian is taken once by central
            // differences (1 pixel: the distortion is a low-order polynomial, so the secant is
            // accurate to ~1e-10 relative); the iteration then converges linearly at a rate of
            // that relative error, i.e. in 2-3 steps to the rounding floor.
            const double* target = &img[2 * i];
            auto forward = [&](const double* pp, double* out2) {
                int s = linp2x(&w->lin, 1, 2, pp, out2);
                if (s != 0)
                    throw Error(error_class::kNumerical,
                                _impl->source +
                                    ": pixel->intermediate failed: " + wcslibMessage(*w.get(), s));
            };
            Eigen::Matrix2d jac;
            for (int k = 0; k < 2; ++k) {
                double lo[2] = {p[0], p[1]}, hi[2] = {p[0], p[1]}, flo[2], fhi[2];
                lo[k] -= 1.0;
                hi[k] += 1.0;
                forward(lo, flo);
                forward(hi, fhi);
                jac(0, k) = (fhi[0] - flo[0]) / 2.0;
                jac(1, k) = (fhi[1] - flo[1]) / 2.0;
            }
            Eigen::Matrix2d inv = jac.inverse();
            double prevStep = std::numeric_limits<double>::infinity();
            for (int iter = 0; iter < 20; ++iter) {
                double f[2];
                forward(p, f);
                Eigen::Vector2d r(f[0] - target[0], f[1] - target[1]);
                Eigen::Vector2d dp = inv * r;
                double step = dp.norm();
                if (!(step < prevStep)) break;  // at the rounding floor (or diverging): stop
                p[0] -= dp[0];
                p[1] -= dp[1];
                prevStep = step;
                if (step < 1e-13) break;
            }
        }
        out[i] = Point2D(p[0] - 1.0, p[1] - 1.0);  // FITS 1-based -> drp 0-based
    }
    return out;
}

Point2D Wcs::skyToPixel(const SpherePoint& sky) const {
    return skyToPixel(std::vector<SpherePoint>{sky})[0];
}

LocalAffine Wcs::linearize(Point2D pixel) const {
    // Central differences of WCSLIB's forward map with a 1-pixel step. Truncation error is
    // h²/6 · f''' — for a gnomonic projection f''' ~ (pixel scale)³ and for SIP/TPV it is the
    // cubic distortion term, both < 1e-12 relative here; rounding error is ~1e-16 rad / (2 h ×
    // pixel scale) ~ 1e-10 relative for 0.2"/pixel.
    constexpr double h = 1.0;
    std::vector<Point2D> pts = {pixel,
                                {pixel.x + h, pixel.y},
                                {pixel.x - h, pixel.y},
                                {pixel.x, pixel.y + h},
                                {pixel.x, pixel.y - h}};
    std::vector<SpherePoint> sky = pixelToSky(pts);
    LocalAffine result;
    result.pixel0 = pixel;
    result.sky = sky[0];
    const double ra = sky[0].ra().asRadians(), dec = sky[0].dec().asRadians();
    const std::array<double, 3> p0 = sky[0].toVector();
    const std::array<double, 3> east = {-std::sin(ra), std::cos(ra), 0.0};
    const std::array<double, 3> north = {-std::sin(dec) * std::cos(ra),
                                         -std::sin(dec) * std::sin(ra), std::cos(dec)};
    const double toDeg = 180.0 / std::numbers::pi;
    for (int k = 0; k < 2; ++k) {
        auto plus = tangentOffsets(sky[1 + 2 * k].toVector(), p0, east, north);
        auto minus = tangentOffsets(sky[2 + 2 * k].toVector(), p0, east, north);
        result.jacobian(0, k) = (plus[0] - minus[0]) / (2 * h) * toDeg;
        result.jacobian(1, k) = (plus[1] - minus[1]) / (2 * h) * toDeg;
    }
    return result;
}

Angle Wcs::pixelScale(Point2D pixel) const {
    return degrees(std::sqrt(std::abs(linearize(pixel).jacobian.determinant())));
}

std::shared_ptr<const Wcs> Wcs::shiftedBy(Extent2D offset) const {
    if (_impl->canonical) {
        CanonicalParams p = _impl->params;
        p.crpix[0] -= offset.x;
        p.crpix[1] -= offset.y;
        return fromFitsHeader(canonicalHeader(p), _impl->source);
    }
    // Any other WCS: shift CRPIX in a private copy and let WCSLIB write it out. Valid for
    // distortions that are functions of intermediate coordinates (TPV, sequent) and for
    // pixel-offset ones defined relative to CRPIX.
    Prm copy;
    {
        Impl::Lease w(*_impl);
        int status = wcssub(1, w.get(), nullptr, nullptr, &copy.w);
        if (status != 0)
            throw Error(error_class::kLogic, _impl->source + ": copying the WCS failed: " +
                                                 wcslibMessage(copy.w, status));
    }
    copy.w.crpix[0] -= offset.x;
    copy.w.crpix[1] -= offset.y;
    copy.w.flag = 0;  // parameters changed: wcsset() again
    int status = wcsset(&copy.w);
    if (status != 0)
        throw Error(error_class::kLogic,
                    _impl->source + ": shifted WCS is invalid: " + wcslibMessage(copy.w, status));
    return fromFitsHeader(writeWithWcslib(copy.w, _impl->source), _impl->source);
}

std::string Wcs::toFitsHeader() const {
    if (_impl->canonical) return canonicalHeader(_impl->params);
    Impl::Lease w(*_impl);
    return writeWithWcslib(*w.get(), _impl->source);
}

SpherePoint Wcs::crval() const {
    return SpherePoint::fromDegrees(_impl->params.crval[0], _impl->params.crval[1]);
}
Point2D Wcs::crpix() const {
    return {_impl->params.crpix[0] - 1.0, _impl->params.crpix[1] - 1.0};
}
Eigen::Matrix2d Wcs::cd() const {
    Eigen::Matrix2d m;
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) m(i, j) = _impl->params.cd[i][j];
    return m;
}
const SipCoefficients* Wcs::sip() const {
    return _impl->params.sip ? &*_impl->params.sip : nullptr;
}
std::string Wcs::projection() const {
    return _impl->projection;
}

}  // namespace drp
