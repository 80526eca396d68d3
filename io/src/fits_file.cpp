// FitsFile: RAII over CFITSIO, errors with file/HDU/message stack, header keywords <->
// PropertyList.
#include <fitsio.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

#include "drp/core/error.h"
#include "drp/io/fits.h"
#include "fits_internal.h"

namespace drp::fits {

namespace fs = std::filesystem;

namespace {

/// CFITSIO's error text and message stack (the stack is emptied).
std::string cfitsioMessage(int status) {
    char text[FLEN_STATUS] = {0};
    fits_get_errstatus(status, text);
    std::string msg = "CFITSIO status " + std::to_string(status) + " (" + text + ")";
    char line[FLEN_ERRMSG] = {0};
    std::string stack;
    while (fits_read_errmsg(line) != 0) {
        std::string l(line);
        while (!l.empty() && l.back() == ' ') l.pop_back();
        if (l.empty()) continue;
        stack += stack.empty() ? l : " | " + l;
    }
    if (!stack.empty()) msg += ": " + stack;
    return msg;
}

/// What a CFITSIO status means for the pipeline (see fits.h).
std::string_view classify(int status, bool writing) {
    switch (status) {
        case FILE_NOT_CREATED:
        case WRITE_ERROR:
        case READ_ERROR:
        case FILE_NOT_CLOSED:
        case READONLY_FILE:
        case MEMORY_ALLOCATION:
        case SEEK_ERROR:
            return error_class::kIo;
        case BAD_HDU_NUM:
            return error_class::kNotFound;
        default:
            return writing ? error_class::kLogic : error_class::kBadInput;
    }
}

/// First bytes of a file, to tell "not FITS" and "truncated" apart before CFITSIO guesses.
void checkLooksLikeFits(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw notFound("cannot open " + path + ": no such file");
    if (fs::is_directory(path, ec)) throw badInput("cannot open " + path + ": is a directory");
    if (::access(path.c_str(), R_OK) != 0)
        throw ioError("cannot open " + path + ": " + std::strerror(errno));
    std::ifstream in(path, std::ios::binary);
    char head[10] = {0};
    in.read(head, sizeof head);
    std::streamsize got = in.gcount();
    bool gzip = got >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
                static_cast<unsigned char>(head[1]) == 0x8b;
    if (gzip) return;  // CFITSIO decompresses in memory; it reports truncation itself
    if (got < 9 || std::string_view(head, 9) != "SIMPLE  =")
        throw badInput(path + " is not a FITS file: it does not start with the SIMPLE keyword" +
                       std::string(got == 0 ? " (the file is empty)" : ""));
    auto size = fs::file_size(path, ec);
    if (!ec && size % 2880 != 0)
        throw badInput(path + " is truncated or corrupt: its size (" + std::to_string(size) +
                       " bytes) is not a whole number of 2880-byte FITS blocks");
}

/// FITS string cards for key = value: one card, or the long-string (CONTINUE) convention
/// written by hand, because CFITSIO 4.2 drops the '&' of the first card when a HIERARCH key
/// leaves exactly no room for it (the value then silently loses its continuation).
std::string stringCards(const std::string& key, const std::string& value,
                        const std::string& comment) {
    bool standard =
        key.size() <= 8 && std::all_of(key.begin(), key.end(), [](char c) {
            return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        });
    std::string prefix =
        standard ? key + std::string(8 - key.size(), ' ') + "= " : "HIERARCH " + key + " = ";
    if (prefix.size() > 70) throw logicError("FITS keyword '" + key + "' is too long");
    auto escape = [](const std::string& s) {
        std::string out;
        for (char c : s) {
            if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126)
                throw logicError("FITS header strings must be printable ASCII");
            out += c;
            if (c == '\'') out += '\'';
        }
        return out;
    };
    auto finish = [&](std::string card) {
        if (!comment.empty() && card.size() + 3 < 80) card += " / " + comment;
        card.resize(80, ' ');
        return card;
    };
    std::string escaped = escape(value);
    if (prefix.size() + escaped.size() + 2 <= 80) {
        std::string v = escaped;
        if (v.size() < 8) v.resize(8, ' ');
        return finish(prefix + "'" + v + "'");
    }
    // Split the raw value so that no doubled quote is cut, each piece followed by '&'.
    std::string out;
    std::size_t pos = 0;
    std::string head = prefix;
    while (true) {
        std::size_t room = 80 - head.size() - 3;  // quotes and '&'
        std::string piece;
        std::size_t n = 0;
        while (pos + n < value.size()) {
            std::size_t add = value[pos + n] == '\'' ? 2 : 1;
            if (piece.size() + add > room) break;
            piece += escape(value.substr(pos + n, 1));
            ++n;
        }
        pos += n;
        if (pos >= value.size()) {
            out += finish(head + "'" + piece + "'");
            return out;
        }
        std::string card = head + "'" + piece + "&'";
        card.resize(80, ' ');
        out += card;
        head = "CONTINUE  ";
    }
}

}  // namespace

// ---- lifetime ------------------------------------------------------------------------------

FitsFile FitsFile::openRead(const std::string& path) {
    checkLooksLikeFits(path);
    fitsfile* f = nullptr;
    int status = 0;
    fits_open_diskfile(&f, path.c_str(), READONLY, &status);
    if (status != 0) {
        std::string msg = cfitsioMessage(status);
        if (f != nullptr) {
            int s2 = 0;
            fits_close_file(f, &s2);
        }
        throw Error(classify(status, false), "opening " + path + ": " + msg);
    }
    return FitsFile(f, path, false);
}

FitsFile FitsFile::create(const std::string& path) {
    fitsfile* f = nullptr;
    int status = 0;
    std::error_code ec;
    if (fs::exists(path, ec)) throw logicError("FitsFile::create: " + path + " already exists");
    fits_create_diskfile(&f, path.c_str(), &status);
    if (status != 0)
        throw Error(error_class::kIo, "creating " + path + ": " + cfitsioMessage(status));
    return FitsFile(f, path, true);
}

FitsFile::~FitsFile() {
    if (_fptr != nullptr) {
        int status = 0;
        fits_close_file(ff(_fptr), &status);
        if (status != 0) fits_clear_errmsg();
    }
}

FitsFile::FitsFile(FitsFile&& o) noexcept
    : _fptr(std::exchange(o._fptr, nullptr)), _path(std::move(o._path)), _writing(o._writing) {}

FitsFile& FitsFile::operator=(FitsFile&& o) noexcept {
    if (this != &o) {
        if (_fptr != nullptr) {
            int status = 0;
            fits_close_file(ff(_fptr), &status);
        }
        _fptr = std::exchange(o._fptr, nullptr);
        _path = std::move(o._path);
        _writing = o._writing;
    }
    return *this;
}

void FitsFile::close() {
    if (_fptr == nullptr) return;
    int status = 0;
    fits_close_file(ff(_fptr), &status);
    _fptr = nullptr;
    if (status != 0)
        throw Error(classify(status, _writing),
                    (_writing ? "writing " : "closing ") + _path + ": " + cfitsioMessage(status));
}

// ---- errors ----------------------------------------------------------------------------------

std::string FitsFile::describeCurrentHdu() {
    if (_fptr == nullptr) return "(closed)";
    int num = 0;
    fits_get_hdu_num(ff(_fptr), &num);
    std::string out = "HDU " + std::to_string(num - 1);
    fits_write_errmark();
    char extname[FLEN_VALUE] = {0};
    int status = 0;
    fits_read_key(ff(_fptr), TSTRING, "EXTNAME", extname, nullptr, &status);
    fits_clear_errmark();
    if (status == 0 && extname[0] != '\0') out += std::string(" (EXTNAME '") + extname + "')";
    return out;
}

void FitsFile::fail(int status, const std::string& what) {
    std::string msg = cfitsioMessage(status);  // first: later calls may push more messages
    std::string where = describeCurrentHdu();
    std::string_view cls = classify(status, _writing);
    if (!_writing && (status == END_OF_FILE || status == READ_ERROR)) {
        // A regular file shorter than its headers say is truncated input, not an OS failure.
        LONGLONG headStart = 0, dataStart = 0, dataEnd = 0;
        int s2 = 0;
        fits_get_hduaddrll(ff(_fptr), &headStart, &dataStart, &dataEnd, &s2);
        fits_clear_errmsg();
        std::error_code ec;
        auto size = fs::file_size(_path, ec);
        if (status == END_OF_FILE || (s2 == 0 && !ec && static_cast<LONGLONG>(size) < dataEnd)) {
            cls = error_class::kBadInput;
            msg += " — the file is truncated (" + std::to_string(size) +
                   " bytes; this HDU ends at byte " + std::to_string(dataEnd) + ")";
        }
    }
    throw Error(cls, what + " " + _path + " " + where + ": " + msg);
}

// ---- HDUs ----------------------------------------------------------------------------------

int FitsFile::numHdus() {
    int n = 0, status = 0;
    fits_get_num_hdus(ff(_fptr), &n, &status);
    check(status, "counting HDUs of");
    return n;
}

int FitsFile::currentHdu() {
    int num = 0;
    fits_get_hdu_num(ff(_fptr), &num);
    return num - 1;
}

void FitsFile::moveTo(const HduRef& hdu) {
    int status = 0;
    if (const int* n = std::get_if<int>(&hdu)) {
        if (*n < 0) throw logicError("FitsFile::moveTo: negative HDU number " + std::to_string(*n));
        fits_movabs_hdu(ff(_fptr), *n + 1, nullptr, &status);
        if (status == END_OF_FILE || status == BAD_HDU_NUM) {
            // Either the HDU does not exist or the file ends inside it: count what is there.
            fits_clear_errmsg();
            int count = 0, s2 = 0;
            fits_get_num_hdus(ff(_fptr), &count, &s2);
            fits_clear_errmsg();
            if (*n >= count)
                throw notFound(_path + " has no HDU " + std::to_string(*n) + " (it has " +
                               std::to_string(count) + " HDU" + (count == 1 ? "" : "s") + ", 0.." +
                               std::to_string(count - 1) + ")");
            throw badInput("moving to HDU " + std::to_string(*n) + " of " + _path +
                           ": the file is truncated or corrupt (CFITSIO status " +
                           std::to_string(status) + ")");
        }
        check(status, "moving to HDU " + std::to_string(*n) + " of");
    } else {
        const std::string& name = std::get<std::string>(hdu);
        fits_movnam_hdu(ff(_fptr), ANY_HDU, const_cast<char*>(name.c_str()), 0, &status);
        if (status == BAD_HDU_NUM) {
            fits_clear_errmsg();
            throw notFound(_path + " has no HDU with EXTNAME '" + name + "'");
        }
        check(status, "moving to HDU '" + name + "' of");
    }
}

bool FitsFile::currentIsImage() {
    int type = 0, status = 0;
    fits_get_hdu_type(ff(_fptr), &type, &status);
    check(status, "reading the HDU type of");
    return type == IMAGE_HDU || currentIsCompressedImage();
}

bool FitsFile::currentIsCompressedImage() {
    int status = 0;
    int compressed = fits_is_compressed_image(ff(_fptr), &status);
    check(status, "checking for a compressed image in");
    return compressed != 0;
}

// ---- headers -------------------------------------------------------------------------------

std::string FitsFile::readHeaderCards() {
    char* header = nullptr;
    int nkeys = 0, status = 0;
    if (currentIsCompressedImage())
        fits_convert_hdr2str(ff(_fptr), 0, nullptr, 0, &header, &nkeys, &status);
    else
        fits_hdr2str(ff(_fptr), 0, nullptr, 0, &header, &nkeys, &status);
    std::string cards;
    if (header != nullptr) {
        cards.assign(header, static_cast<std::size_t>(nkeys) * 80);
        int s2 = 0;
        fits_free_memory(header, &s2);
    }
    check(status, "reading the header of");
    return cards;
}

PropertyList FitsFile::readMetadata() {
    return parseCards(readHeaderCards(), _path + " " + describeCurrentHdu(), false);
}

void FitsFile::writeMetadata(const PropertyList& metadata) {
    bool warnedLong = false;
    for (const auto& e : metadata.entries()) {
        int status = 0;
        const char* comment = e.comment.empty() ? nullptr : e.comment.c_str();
        char* key = const_cast<char*>(e.key.c_str());
        if (e.key.empty()) throw logicError("writing " + _path + ": empty metadata key");
        if (const bool* b = std::get_if<bool>(&e.value)) {
            fits_update_key_log(ff(_fptr), key, *b ? 1 : 0, comment, &status);
        } else if (const std::int64_t* i = std::get_if<std::int64_t>(&e.value)) {
            fits_update_key_lng(ff(_fptr), key, static_cast<LONGLONG>(*i), comment, &status);
        } else if (const double* d = std::get_if<double>(&e.value)) {
            if (!std::isfinite(*d))
                throw logicError("writing " + _path + ": metadata key '" + e.key +
                                 "' is not finite; FITS headers cannot hold NaN or infinity");
            // 17 significant digits: the shortest precision that always reads back exactly.
            fits_update_key_dbl(ff(_fptr), key, *d, -17, comment, &status);
        } else {
            const std::string& s = std::get<std::string>(e.value);
            std::string cards = stringCards(e.key, s, e.comment);
            if (cards.size() > 80 && !warnedLong) {
                fits_write_key_longwarn(ff(_fptr), &status);
                warnedLong = true;
            }
            fits_write_errmark();
            fits_delete_key(ff(_fptr), key, &status);  // update semantics (removes CONTINUEs too)
            fits_clear_errmark();
            if (status == KEY_NO_EXIST) status = 0;
            for (std::size_t i = 0; i < cards.size() && status == 0; i += 80)
                fits_write_record(ff(_fptr), cards.substr(i, 80).c_str(), &status);
        }
        check(status, "writing keyword '" + e.key + "' to");
    }
}

void FitsFile::writeCards(const std::string& cards) {
    for (std::size_t i = 0; i + 80 <= cards.size(); i += 80) {
        std::string card = cards.substr(i, 80);
        int status = 0;
        fits_write_record(ff(_fptr), card.c_str(), &status);
        check(status, "writing header card '" + card.substr(0, 8) + "' to");
    }
}

void FitsFile::writeChecksum() {
    // The FITS checksum convention (Seaman et al. 2002), written with fixed comments: CFITSIO's
    // fits_write_chksum puts the current date into the CHECKSUM comment, so two runs over the
    // same data would write different bytes. DATASUM is the 32-bit ones'-complement sum of the
    // data unit; CHECKSUM is the encoded complement of the whole HDU's sum, computed with
    // CHECKSUM = '0000000000000000' in place, so that the HDU then sums to -0.
    fitsfile* f = ff(_fptr);
    int status = 0;
    char zeros[] = "0000000000000000";
    fits_update_key_str(f, "CHECKSUM", zeros, "HDU checksum", &status);
    fits_update_key_str(f, "DATASUM", const_cast<char*>("0"), "data unit checksum", &status);
    // Re-scan the header structure so that the data unit starts where the sums expect it.
    fits_set_hdustruc(f, &status);
    check(status, "writing the checksum of");
    unsigned long dataSum = 0, hduSum = 0;
    fits_get_chksum(f, &dataSum, &hduSum, &status);
    check(status, "computing the checksum of");
    std::string data = std::to_string(dataSum);
    fits_modify_key_str(f, "DATASUM", data.c_str(), "&", &status);
    check(status, "writing the checksum of");
    fits_get_chksum(f, &dataSum, &hduSum, &status);
    check(status, "computing the checksum of");
    char encoded[17];
    fits_encode_chksum(hduSum, 1, encoded);
    encoded[16] = '\0';
    fits_modify_key_str(f, "CHECKSUM", encoded, "&", &status);
    check(status, "writing the checksum of");
}

void FitsFile::verifyChecksum() {
    int dataOk = 0, hduOk = 0, status = 0;
    fits_verify_chksum(ff(_fptr), &dataOk, &hduOk, &status);
    check(status, "verifying the checksum of");
    if (dataOk < 0 || hduOk < 0)
        throw badInput(_path + " " + describeCurrentHdu() + " is corrupt: its " +
                       (dataOk < 0 ? "DATASUM" : "CHECKSUM") + " does not match its contents");
}

// ---- images --------------------------------------------------------------------------------

namespace {
template <typename T>
struct PixelType;
template <>
struct PixelType<float> {
    static constexpr int bitpix = FLOAT_IMG, datatype = TFLOAT;
};
template <>
struct PixelType<double> {
    static constexpr int bitpix = DOUBLE_IMG, datatype = TDOUBLE;
};
template <>
struct PixelType<std::int32_t> {
    static constexpr int bitpix = LONG_IMG, datatype = TINT;
};
static_assert(sizeof(int) == sizeof(std::int32_t), "CFITSIO TINT must be 32-bit");
}  // namespace

template <typename T>
void FitsFile::writeImage(ConstImageView<T> image) {
    int status = 0;
    long naxes[2] = {image.width(), image.height()};
    fits_create_img(ff(_fptr), PixelType<T>::bitpix, 2, naxes, &status);
    check(status, "creating an image HDU in");
    if (image.bbox().empty()) return;
    if (image.stride() == image.width()) {
        fits_write_img(ff(_fptr), PixelType<T>::datatype, 1,
                       static_cast<LONGLONG>(image.bbox().area()), const_cast<T*>(image.data()),
                       &status);
    } else {
        for (int j = 0; j < image.height() && status == 0; ++j)
            fits_write_img(ff(_fptr), PixelType<T>::datatype,
                           static_cast<LONGLONG>(j) * image.width() + 1, image.width(),
                           const_cast<T*>(image.row(j)), &status);
    }
    check(status, "writing pixels to");
    // Origin: IRAF physical = (array - LTV) / LTM, so LTV = -xy0 makes physical = parent + 1.
    if (image.xy0() != Point2I{0, 0}) {
        PropertyList origin;
        origin.set("LTV1", -image.xy0().x, "origin: drp x0 = -LTV1");
        origin.set("LTV2", -image.xy0().y, "origin: drp y0 = -LTV2");
        origin.set("LTM1_1", 1.0);
        origin.set("LTM2_2", 1.0);
        writeMetadata(origin);
    }
}

template <typename T>
Image<T> FitsFile::readImage() {
    if (!currentIsImage())
        throw badInput(_path + " " + describeCurrentHdu() + " is not an image HDU");
    int naxis = 0, status = 0;
    fits_get_img_dim(ff(_fptr), &naxis, &status);
    check(status, "reading the image dimensions of");
    if (naxis != 2)
        throw badInput(_path + " " + describeCurrentHdu() +
                       " has NAXIS = " + std::to_string(naxis) + "; a 2-D image is required");
    LONGLONG dims[2] = {0, 0};
    fits_get_img_sizell(ff(_fptr), 2, dims, &status);
    check(status, "reading the image size of");
    if (dims[0] > std::numeric_limits<int>::max() || dims[1] > std::numeric_limits<int>::max())
        throw badInput(_path + " " + describeCurrentHdu() + " is too large");
    PropertyList keys = readMetadata();
    Point2I xy0{0, 0};
    bool unitScale =
        keys.get<double>("LTM1_1", 1.0) == 1.0 && keys.get<double>("LTM2_2", 1.0) == 1.0;
    if (unitScale && keys.has("LTV1") && keys.has("LTV2")) {
        double ltv1 = keys.get<double>("LTV1"), ltv2 = keys.get<double>("LTV2");
        if (ltv1 == std::round(ltv1) && ltv2 == std::round(ltv2) && std::abs(ltv1) < 1e9 &&
            std::abs(ltv2) < 1e9)
            xy0 = {static_cast<int>(-ltv1), static_cast<int>(-ltv2)};
    }
    Image<T> out(Box2I(xy0, Extent2I{static_cast<int>(dims[0]), static_cast<int>(dims[1])}));
    if (out.bbox().empty()) return out;
    int anynul = 0;
    fits_read_img(ff(_fptr), PixelType<T>::datatype, 1, static_cast<LONGLONG>(out.bbox().area()),
                  nullptr, out.data(), &anynul, &status);
    check(status, "reading pixels of");
    return out;
}

template void FitsFile::writeImage<float>(ConstImageView<float>);
template void FitsFile::writeImage<double>(ConstImageView<double>);
template void FitsFile::writeImage<std::int32_t>(ConstImageView<std::int32_t>);
template Image<float> FitsFile::readImage<float>();
template Image<double> FitsFile::readImage<double>();
template Image<std::int32_t> FitsFile::readImage<std::int32_t>();

// ---- header card parsing -------------------------------------------------------------------

namespace {

std::string rtrim(std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

/// The text of a FITS string value ('it''s' -> it's), trailing blanks removed.
std::string unquote(const std::string& v) {
    std::string out;
    std::size_t i = v.find('\'');
    if (i == std::string::npos) return rtrim(v);
    for (++i; i < v.size(); ++i) {
        if (v[i] == '\'') {
            if (i + 1 < v.size() && v[i + 1] == '\'') {
                out += '\'';
                ++i;
            } else {
                break;
            }
        } else {
            out += v[i];
        }
    }
    return rtrim(out);
}

bool isStructural(int keyClass) {
    return keyClass == TYP_STRUC_KEY || keyClass == TYP_CMPRS_KEY || keyClass == TYP_SCAL_KEY ||
           keyClass == TYP_CKSUM_KEY || keyClass == TYP_HDUID_KEY || keyClass == TYP_NULL_KEY;
}

}  // namespace

PropertyList parseCards(const std::string& cards, const std::string& source, bool userOnly) {
    PropertyList out;
    const std::size_t n = cards.size() / 80;
    for (std::size_t k = 0; k < n; ++k) {
        std::string card = cards.substr(k * 80, 80);
        int status = 0;
        char name[FLEN_KEYWORD] = {0};
        int len = 0;
        fits_get_keyname(card.data(), name, &len, &status);
        if (status != 0 || len == 0) {
            fits_clear_errmsg();
            continue;
        }
        std::string key(name);
        if (key == "COMMENT" || key == "HISTORY" || key == "CONTINUE" || key == "END") continue;
        int keyClass = fits_get_keyclass(card.data());
        if (keyClass == TYP_COMM_KEY || keyClass == TYP_CONT_KEY) continue;
        if (userOnly &&
            (isStructural(keyClass) || key == "EXTEND" || key == "INHERIT" || key == "LONGSTRN"))
            continue;
        char value[FLEN_VALUE] = {0}, comment[FLEN_COMMENT] = {0};
        fits_parse_value(card.data(), value, comment, &status);
        if (status != 0) {
            fits_clear_errmsg();
            throw badInput(source + ": cannot parse header card '" + rtrim(card) + "'");
        }
        if (value[0] == '\0') continue;  // keyword without a value
        char dtype = 0;
        fits_get_keytype(value, &dtype, &status);
        if (status != 0) {
            fits_clear_errmsg();
            throw badInput(source + ": keyword " + key + " has an unparseable value '" +
                           rtrim(value) + "'");
        }
        std::string text = rtrim(comment);
        switch (dtype) {
            case 'C': {
                std::string s = unquote(value);
                // Long-string convention: a value ending in '&' continues on CONTINUE cards.
                while (!s.empty() && s.back() == '&' && k + 1 < n &&
                       cards.compare((k + 1) * 80, 8, "CONTINUE") == 0) {
                    s.pop_back();
                    ++k;
                    std::string next = cards.substr(k * 80 + 10, 70);  // value from column 11
                    char v2[FLEN_VALUE] = {0}, c2[FLEN_COMMENT] = {0};
                    std::string fake = "X       = " + next;  // parse as a value card
                    fake.resize(80, ' ');
                    int s2 = 0;
                    fits_parse_value(fake.data(), v2, c2, &s2);
                    if (s2 != 0) {
                        fits_clear_errmsg();
                        break;
                    }
                    s += unquote(v2);
                    if (c2[0] != '\0') text = rtrim(c2);
                }
                out.set(key, PropertyList::Value(s), text);
                break;
            }
            case 'L':
                out.set(key, PropertyList::Value(value[0] == 'T'), text);
                break;
            case 'I': {
                errno = 0;
                long long v = std::strtoll(value, nullptr, 10);
                if (errno == ERANGE)
                    out.set(key, PropertyList::Value(std::strtod(value, nullptr)), text);
                else
                    out.set(key, PropertyList::Value(static_cast<std::int64_t>(v)), text);
                break;
            }
            case 'F': {
                std::string v(value);
                for (char& c : v)
                    if (c == 'D' || c == 'd') c = 'E';  // Fortran double exponent
                out.set(key, PropertyList::Value(std::strtod(v.c_str(), nullptr)), text);
                break;
            }
            default:  // complex ('X') and anything else: keep the text
                out.set(key, PropertyList::Value(rtrim(value)), text);
        }
    }
    return out;
}

// ---- free functions ------------------------------------------------------------------------

FitsHeader readHeader(const std::string& path, const HduRef& hdu) {
    FitsFile f = FitsFile::openRead(path);
    f.moveTo(hdu);
    FitsHeader h;
    h.cards = f.readHeaderCards();
    h.metadata = parseCards(h.cards, path + " " + f.describeCurrentHdu(), false);
    return h;
}

template <typename T>
Image<T> readImage(const std::string& path, const HduRef& hdu) {
    FitsFile f = FitsFile::openRead(path);
    f.moveTo(hdu);
    return f.readImage<T>();
}

template Image<float> readImage<float>(const std::string&, const HduRef&);
template Image<double> readImage<double>(const std::string&, const HduRef&);
template Image<std::int32_t> readImage<std::int32_t>(const std::string&, const HduRef&);

}  // namespace drp::fits
