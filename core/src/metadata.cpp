#include "drp/core/metadata.h"

#include <algorithm>

namespace drp {

void PropertyList::set(const std::string& key, Value value, std::string comment) {
    for (auto& e : _entries) {
        if (e.key == key) {
            e.value = std::move(value);
            if (!comment.empty()) e.comment = std::move(comment);
            return;
        }
    }
    _entries.push_back({key, std::move(value), std::move(comment)});
}

void PropertyList::remove(const std::string& key) {
    std::erase_if(_entries, [&](const Entry& e) { return e.key == key; });
}

const PropertyList::Entry* PropertyList::find(const std::string& key) const {
    for (auto& e : _entries)
        if (e.key == key) return &e;
    return nullptr;
}

void PropertyList::update(const PropertyList& other) {
    for (auto& e : other._entries) set(e.key, e.value, e.comment);
}

namespace {
const Error typeError(const std::string& key, const char* want) {
    return badInput("metadata key '" + key + "' is not of type " + want);
}
}  // namespace

template <>
bool PropertyList::get<bool>(const std::string& key) const {
    const Entry* e = find(key);
    if (!e) throw notFound("metadata key '" + key + "' not found");
    if (auto* v = std::get_if<bool>(&e->value)) return *v;
    throw typeError(key, "bool");
}

template <>
std::int64_t PropertyList::get<std::int64_t>(const std::string& key) const {
    const Entry* e = find(key);
    if (!e) throw notFound("metadata key '" + key + "' not found");
    if (auto* v = std::get_if<std::int64_t>(&e->value)) return *v;
    throw typeError(key, "integer");
}

template <>
int PropertyList::get<int>(const std::string& key) const {
    return static_cast<int>(get<std::int64_t>(key));
}

template <>
double PropertyList::get<double>(const std::string& key) const {
    const Entry* e = find(key);
    if (!e) throw notFound("metadata key '" + key + "' not found");
    if (auto* v = std::get_if<double>(&e->value)) return *v;
    if (auto* v = std::get_if<std::int64_t>(&e->value)) return static_cast<double>(*v);
    throw typeError(key, "number");
}

template <>
std::string PropertyList::get<std::string>(const std::string& key) const {
    const Entry* e = find(key);
    if (!e) throw notFound("metadata key '" + key + "' not found");
    if (auto* v = std::get_if<std::string>(&e->value)) return *v;
    throw typeError(key, "string");
}

}  // namespace drp
