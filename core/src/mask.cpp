#include "drp/core/mask.h"

namespace drp {

MaskPlanes MaskPlanes::defaults() {
    MaskPlanes p;
    const char* names[] = {"BAD",     "SAT",   "INTRP",   "CR",          "EDGE",       "DETECTED",
                           "SUSPECT", "NO_DATA", "STREAK", "CLIPPED", "SENSOR_EDGE", "INEXACT_PSF"};
    int i = 0;
    for (const char* n : names) p._planes[n] = i++;
    return p;
}

int MaskPlanes::index(const std::string& name) const {
    auto it = _planes.find(name);
    if (it == _planes.end()) throw logicError("unknown mask plane '" + name + "'");
    return it->second;
}

MaskPixel MaskPlanes::bit(const std::string& name) const {
    return static_cast<MaskPixel>(1u << index(name));
}

int MaskPlanes::addPlane(const std::string& name) {
    auto it = _planes.find(name);
    if (it != _planes.end()) return it->second;
    std::uint32_t used = 0;
    for (auto& [n, i] : _planes) used |= 1u << i;
    for (int i = 0; i < 31; ++i) {
        if (!(used & (1u << i))) {
            _planes[name] = i;
            return i;
        }
    }
    throw logicError("no free mask bit for plane '" + name + "'");
}

void MaskPlanes::setPlane(const std::string& name, int index) {
    if (index < 0 || index > 30) throw badInput("mask plane '" + name + "' has invalid bit " + std::to_string(index));
    for (auto& [n, i] : _planes) {
        if (i == index && n != name)
            throw badInput("mask planes '" + n + "' and '" + name + "' share bit " + std::to_string(index));
    }
    _planes[name] = index;
}

MaskPixel MaskPlanes::bits(const std::vector<std::string>& names) const {
    MaskPixel b = 0;
    for (auto& n : names) b |= bit(n);
    return b;
}

std::string MaskPlanes::describe(MaskPixel value) const {
    std::string out;
    for (auto& [n, i] : _planes) {
        if (value & (1u << i)) {
            if (!out.empty()) out += ",";
            out += n;
        }
    }
    return out;
}

}  // namespace drp
