#include "cli/deblend_options.h"

#include "drp/core/error.h"

namespace po = boost::program_options;

namespace drp::cli {

void addDeblendOptions(po::options_description& o) {
    const deblend::MultiBandDetectionConfig d;
    const deblend::DeblendConfig b;
    o.add_options()("detect.threshold",
                    po::value<double>()->default_value(d.detection.thresholdSigma),
                    "detection threshold, matched-filter S/N")(
        "detect.n-sigma-to-grow", po::value<double>()->default_value(d.detection.nSigmaToGrow),
        "footprint growth radius [PSF sigma]")(
        "detect.min-peak-separation",
        po::value<double>()->default_value(d.detection.minPeakSeparation),
        "peaks closer than this to a brighter one are dropped [px]")(
        "detect.min-peak-prominence",
        po::value<double>()->default_value(d.detection.minPeakProminence),
        "minimum dip between a peak and the nearest brighter one [S/N]")(
        "detect.peak-merge-radius", po::value<double>()->default_value(d.peakMergeRadius),
        "peaks of different bands closer than this are one object [px]")(
        "detect.resolved-pairs", po::value<bool>()->default_value(d.resolvedPairs),
        "a merged peak between two peaks of a sharper band, >= its FWHM apart, is replaced by "
        "them")("detect.shoulder-peaks", po::value<bool>()->default_value(d.shoulderPeaks),
                "search peaks on the shoulders of brighter objects (symmetric templates)")(
        "detect.shoulder-min-separation",
        po::value<double>()->default_value(d.shoulderMinSeparation),
        "shoulder peaks: minimum distance to every other peak [PSF sigma]")(
        "detect.shoulder-min-fraction", po::value<double>()->default_value(d.shoulderMinFraction),
        "shoulder peaks: minimum fraction of the filtered flux at their position")(
        "detect.shoulder-psf-excess", po::value<double>()->default_value(d.shoulderPsfExcess),
        "shoulder peaks: minimum excess over the known peaks' PSF-scaled profiles, as a "
        "fraction of that prediction")(
        "deblend.max-peaks", po::value<int>()->default_value(b.maxPeaks),
        "parents with more peaks are kept undeblended (flag too_many_peaks)")(
        "deblend.max-pixels", po::value<long long>()->default_value(b.maxPixels),
        "parents with larger footprints are kept undeblended (flag too_large) [px]")(
        "deblend.min-iterations", po::value<int>()->default_value(b.minIterations),
        "iterations before the convergence test")("deblend.max-iterations",
                                                  po::value<int>()->default_value(b.maxIterations),
                                                  "iteration limit (flag not_converged)")(
        "deblend.relative-tolerance", po::value<double>()->default_value(b.relativeTolerance),
        "converged when the loss changes by less than this (relative) twice in a row")(
        "deblend.residual-peaks", po::value<bool>()->default_value(b.residualPeaks),
        "add significant peaks of the data minus the children's models and deblend again")(
        "deblend.residual-threshold", po::value<double>()->default_value(b.residualThreshold),
        "residual peaks: minimum band-combined matched-filter S/N")(
        "deblend.prune-spurious-peaks", po::value<bool>()->default_value(b.prune),
        "drop peaks within 1\" of a brighter sibling whose light the others' models explain");
}

void deblendConfigFromOptions(const po::variables_map& vm, deblend::MultiBandDetectionConfig& d,
                              deblend::DeblendConfig& b) {
    d.detection.thresholdSigma = vm["detect.threshold"].as<double>();
    d.detection.nSigmaToGrow = vm["detect.n-sigma-to-grow"].as<double>();
    d.detection.minPeakSeparation = vm["detect.min-peak-separation"].as<double>();
    d.detection.minPeakProminence = vm["detect.min-peak-prominence"].as<double>();
    d.peakMergeRadius = vm["detect.peak-merge-radius"].as<double>();
    d.resolvedPairs = vm["detect.resolved-pairs"].as<bool>();
    d.shoulderPeaks = vm["detect.shoulder-peaks"].as<bool>();
    d.shoulderMinSeparation = vm["detect.shoulder-min-separation"].as<double>();
    d.shoulderMinFraction = vm["detect.shoulder-min-fraction"].as<double>();
    d.shoulderPsfExcess = vm["detect.shoulder-psf-excess"].as<double>();
    b.maxPeaks = vm["deblend.max-peaks"].as<int>();
    b.maxPixels = vm["deblend.max-pixels"].as<long long>();
    b.minIterations = vm["deblend.min-iterations"].as<int>();
    b.maxIterations = vm["deblend.max-iterations"].as<int>();
    b.relativeTolerance = vm["deblend.relative-tolerance"].as<double>();
    b.residualPeaks = vm["deblend.residual-peaks"].as<bool>();
    b.residualThreshold = vm["deblend.residual-threshold"].as<double>();
    b.prune = vm["deblend.prune-spurious-peaks"].as<bool>();
    d.validate();
    b.validate();
}

}  // namespace drp::cli
