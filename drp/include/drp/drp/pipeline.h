// The release pipeline: the science stages of ../shared/DESIGN.md as jobs::Stage definitions,
// the repository layout they read and write, and ingest.
//
// Stages (data-id kind in brackets):
//   bias, dark   [day-detector]     master bias / dark from the day's raw biases / darks
//   flat         [day-detector-band] master flat per band (robust combine, normalised)
//   isr          [visit-detector]   raw -> exposure: overscan, gain, bias, dark, flat, masks
//   characterize [visit-detector]   background, CRs, detection, PSF, photometry   (calib/)
//   astrometry   [visit-detector]   pattern match + TAN-SIP fit to the refcat       (calib/)
//   photocal     [release, global]  gather bright-star fluxes -> ubercal solve      (calib/)
//   coadd        [patch-band]       warp + compare-warp combine + CoaddPsf           (coadd/)
//   deblend      [patch]            multi-band detection + scarlet-lite deblend      (deblend/)
//   multifit     [patch]            every epoch's pixels, PSF, WCS, zero point       (multifit/)
//   release      [release]          merge patches, is_primary, object ids            (drp/)
// Each task is a pure function of its inputs (files declared by the planners) and the config;
// task functions read their inputs, call the algorithm modules, and write their outputs with
// atomic writers. Visit-detector units that fail a science step in a way that must not stop the
// release (astrometry_failed, psf_failed, no_reference_stars) finish *degraded* with that flag
// and are left out of the global calibration and the coadds; crashes and bad input fail the unit.
//
// The first four run only when the repository holds raw exposures (raw/): see
// docs/calibration_products.md. Master calibrations are grouped by observing day (MJD - 0.5,
// rounded down: the day rolls over at 12:00 UTC) and built per detector (and band for flats);
// each is valid for raws within MasterCalibConfig::validityDays of its inputs, and an isr task
// takes, for each kind, the valid master whose inputs are closest in time. A raw without a valid
// master (none planned, or its task failed) fails its isr unit with class calibration_missing.
//
// Repository layout (paths relative to the repository root; ids in the names):
//   input/**/*.fits                               input exposures (calibrated-image path; drp
//                                                 exposure files with VISIT, DETECTOR, BAND,
//                                                 MJD-OBS and an approximate WCS), e.g. from drp
//                                                 simulate
//   raw/**/*.fits                                 raw exposures (io/raw_fits.h: OBSTYPE science,
//                                                 bias, dark or flat; amplifiers with overscan),
//                                                 e.g. from drp simulate --raw
//   calib/bias/<day>/<det>.fits                   master bias [e-] (drp exposure file; header:
//   calib/dark/<day>/<det>.fits                   master dark [e-/s]   CALTYPE, VALIDSTA/VALIDEND,
//   calib/flat/<day>/<band>/<det>.fits            master flat [1]      CALINPUT = input ids, ...)
//   visit/<visit>/<det>/postisr.fits              ISR output of a raw (what characterize reads)
//   refcat/refcat.h5        (table "refcat")      reference catalog: ra, dec, <band>_mag, ...
//   truth/truth.h5          (simulations only)    truth tables
//   skymap.ini                                    skymap definition (see readSkyMapConfig)
//   ingest/visits.h5        (tables "exposures", "overlaps", "patches")
//   visit/<visit>/<det>/calexp.fits               background-subtracted, CR-repaired exposure
//   visit/<visit>/<det>/characterize.h5           tables "sources", "psf", "background"
//   visit/<visit>/<det>/astrometry.h5             fitted WCS (attribute wcs_header), "matches"
//   calib/photocal.h5                             tables "zero_points", "stars"
//   calib/astrometry.h5                           table "wcs": the joint astrometric solution
//   patch/<tract>/<patch>/coadd-<band>.fits       coadd (nJy) with the patch WCS
//   patch/<tract>/<patch>/coadd-<band>-psf.h5     coadd PSF kernel, depth and inputs
//   patch/<tract>/<patch>/deblend.h5              tables "parents", "children"
//   patch/<tract>/<patch>/multifit.h5             table "objects"
//   release/object.h5                             table "object" (the release catalog)
//   runs/<run id>.jsonl                           journals (jobs/)
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drp/calib/astrometry.h"
#include "drp/calib/characterize.h"
#include "drp/calib/master_calib.h"
#include "drp/calib/photocal.h"
#include "drp/coadd/assemble.h"
#include "drp/coadd/warp.h"
#include "drp/core/table.h"
#include "drp/deblend/deblender.h"
#include "drp/jobs/pipeline.h"
#include "drp/multifit/fitter.h"
#include "drp/skymap/sky_map.h"

namespace drp::pipeline {

/// Every stage's configuration. Defaults are the production defaults of each module.
struct PipelineConfig {
    calib::CharacterizeConfig characterize;
    AstrometryConfig astrometry;
    PhotoCalConfig photocal;
    /// Stars used for photometric calibration: unflagged, PSF-flux S/N at least this.
    double photocalMinSnr = 20.0;
    /// Association radius for repeated measurements of the same star [arcsec].
    double photocalMatchRadius = 0.5;
    /// Point-source selection for photometric calibration: |T/T_psf - 1| at most this plus twice
    /// the size's noise (T = Ixx + Iyy; T_psf: median over the PSF stars).
    double photocalStarSizeTolerance = 0.04;
    /// Master bias/dark/flat construction and instrument signal removal (raw path only).
    calib::MasterCalibConfig masterCalib;
    calib::IsrConfig isr;
    coadd::WarpConfig warp;
    coadd::AssembleConfig assemble;
    deblend::MultiBandDetectionConfig detect;
    deblend::DeblendConfig deblend;
    multifit::FitConfig multifit;
    /// Multifit cutout half-size in units of the object's footprint radius, and limits [px].
    int multifitMinHalfSize = 8, multifitMaxHalfSize = 40;
    void validate() const;
    /// SHA-256 of the effective configuration (provenance, journal run_start).
    std::string hash() const;
};

/// Paths of the repository's datasets (see the layout above).
class Repository {
  public:
    explicit Repository(std::string root);
    const std::string& root() const { return _root; }
    std::string abs(const std::string& rel) const { return _root + "/" + rel; }

    static std::string visitDir(std::int64_t visit, int det);
    static std::string calexp(std::int64_t visit, int det) {
        return visitDir(visit, det) + "/calexp.fits";
    }
    static std::string postIsr(std::int64_t visit, int det) {
        return visitDir(visit, det) + "/postisr.fits";
    }
    static std::string characterizeFile(std::int64_t visit, int det) {
        return visitDir(visit, det) + "/characterize.h5";
    }
    static std::string astrometryFile(std::int64_t visit, int det) {
        return visitDir(visit, det) + "/astrometry.h5";
    }
    static std::string patchDir(int tract, int patch);
    static std::string coadd(int tract, int patch, const std::string& band);
    static std::string coaddPsf(int tract, int patch, const std::string& band);
    static std::string deblendFile(int tract, int patch) {
        return patchDir(tract, patch) + "/deblend.h5";
    }
    static std::string multifitFile(int tract, int patch) {
        return patchDir(tract, patch) + "/multifit.h5";
    }
    static constexpr const char* kRefcat = "refcat/refcat.h5";
    static constexpr const char* kTruth = "truth/truth.h5";
    static constexpr const char* kSkyMap = "skymap.ini";
    static constexpr const char* kIngest = "ingest/visits.h5";
    static constexpr const char* kPhotocal = "calib/photocal.h5";
    static constexpr const char* kJointAstrometry = "calib/astrometry.h5";
    static constexpr const char* kRelease = "release/object.h5";

  private:
    std::string _root;
};

/// Reads REPO/skymap.ini ("key = value": type = rings|discrete; ra, dec, radius (degrees) for a
/// discrete skymap with one field; pixel_scale (arcsec), patch_inner, patch_border (pixels),
/// num_rings). A missing file gives the default ring skymap.
SkyMapConfig readSkyMapConfig(const Repository& repo);
/// Writes a skymap.ini that readSkyMapConfig reads back (atomically).
void writeSkyMapConfig(const Repository& repo, const SkyMapConfig& config);

/// One input exposure (visit, detector) as registered by ingest.
struct InputExposure {
    std::int64_t visit = 0;
    int detector = 0;
    std::string band;
    double mjd = 0;
    std::string path;  ///< relative to the repository root
    /// For a raw science exposure: the raw file (relative); `path` is then its ISR output.
    std::string raw;
    Box2I bbox;
    std::vector<SpherePoint> corners;  ///< from the header WCS, grown by its uncertainty
};

/// One detector of a raw calibration exposure (bias, dark or flat) as registered by ingest.
struct CalibExposure {
    std::int64_t id = 0;  ///< exposure id (VISIT keyword)
    int detector = 0;
    std::string obsType;  ///< bias, dark, flat
    std::string band;     ///< flats only
    double mjd = 0, exposureTime = 0;
    std::string path;  ///< relative to the repository root
    Box2I bbox;        ///< the assembled detector
};

/// The ingest registry: exposures and which patches each overlaps.
struct Registry {
    std::vector<InputExposure> exposures;       ///< sorted by (visit, detector)
    std::vector<CalibExposure> calibExposures;  ///< sorted by (id, detector)
    std::vector<std::string> bands;             ///< bands present, in u g r i z y order
    /// (tract, patch) -> indices into `exposures` overlapping the patch's outer region.
    std::map<TractPatchId, std::vector<std::size_t>> overlaps;
};

/// Scan REPO/input (calibrated exposures) and REPO/raw (raw science and calibration exposures)
/// for exposures, read their headers, compute the overlaps with the skymap and
/// write ingest/visits.h5 atomically. Bad files are reported in `problems` (file and reason)
/// and left out; they never stop the ingest.
Registry ingest(const Repository& repo, const SkyMap& skymap,
                std::vector<std::string>* problems = nullptr);
/// Read ingest/visits.h5.
Registry readRegistry(const Repository& repo);

/// Data ids: "visit=1000,det=3", "tract=0,patch=5", "tract=0,patch=5,band=r", "release".
std::string visitDetectorId(std::int64_t visit, int det);
std::string patchId(int tract, int patch);
std::string patchBandId(int tract, int patch, const std::string& band);
/// Parse "k=v,k=v" into a map; throws Error(bad_input) for malformed ids.
std::map<std::string, std::string> parseDataId(const std::string& id);

/// The release pipeline over `registry` (see the stage list above).
jobs::Pipeline makePipeline(const Repository& repo, const PipelineConfig& config,
                            std::shared_ptr<const SkyMap> skymap,
                            std::shared_ptr<const Registry> registry);

/// A master calibration to build: one kind, one detector (and band), one observing day.
struct MasterCalibSpec {
    std::string type;  ///< bias, dark, flat (= its stage name)
    int detector = 0;
    std::string band;                 ///< flats only
    int day = 0;                      ///< observing day: floor(MJD - 0.5) of its inputs
    std::vector<std::size_t> inputs;  ///< indices into Registry::calibExposures, by id
    calib::CalibValidity validity;    ///< from the inputs' MJDs and validityDays
    std::string dataId() const;       ///< "day=60309,det=0" (flats: ",band=r")
    std::string path() const;         ///< calib/<type>/<day>/[<band>/]<det>.fits
};
/// Every master calibration the registry's calibration exposures make, ordered by (type, day,
/// detector, band).
std::vector<MasterCalibSpec> planMasterCalibs(const Registry& registry,
                                              const calib::MasterCalibConfig& config);
/// The master of `type` for `detector` (and `band` for flats) valid at `mjd` whose inputs are
/// closest in time (calib::selectCalibration), or nullptr.
const MasterCalibSpec* selectMasterCalib(const std::vector<MasterCalibSpec>& masters,
                                         const std::string& type, int detector,
                                         const std::string& band, double mjd);
/// Adds the bias, dark, flat and isr stages (pipeline_isr.cpp); makePipeline calls it first.
void addCalibrationStages(jobs::Pipeline& pipeline, const Repository& repo,
                          const PipelineConfig& config, std::shared_ptr<const Registry> registry);

/// Maps drp::Error to its error class for the engine.
std::optional<std::string> errorClassOf(const std::exception& e);

// ---- the stages' task bodies (one file each in drp/src) ------------------------------------
jobs::TaskResult runCharacterize(const Repository& repo, const PipelineConfig& config,
                                 const InputExposure& in);
jobs::TaskResult runAstrometry(const Repository& repo, const PipelineConfig& config,
                               const InputExposure& in);
std::string gatherPhotocal(const Repository& repo, const PipelineConfig& config,
                           const InputExposure& in);
jobs::TaskResult solvePhotocal(const Repository& repo, const PipelineConfig& config,
                               const std::vector<std::pair<std::string, std::string>>& blobs);
jobs::TaskResult runCoadd(const Repository& repo, const PipelineConfig& config,
                          const SkyMap& skymap, const Registry& registry, TractPatchId patch,
                          const std::string& band);
jobs::TaskResult runDeblend(const Repository& repo, const PipelineConfig& config,
                            const SkyMap& skymap, const Registry& registry, TractPatchId patch);
jobs::TaskResult runMultifit(const Repository& repo, const PipelineConfig& config,
                             const SkyMap& skymap, const Registry& registry, TractPatchId patch);
jobs::TaskResult runRelease(const Repository& repo, const SkyMap& skymap, const Registry& registry);

/// Provenance attributes every output carries: software version, config hash, data id.
PropertyList provenance(const PipelineConfig& config, const std::string& dataId);

/// The calibrated WCS of a visit-detector: the joint astrometric solution (calib/astrometry.h5)
/// when the global calibration has run, else the per-visit fit (visit/<v>/<d>/astrometry.h5).
std::shared_ptr<const Wcs> readCalibratedWcs(const Repository& repo, std::int64_t visit, int det);

/// Zero points from calib/photocal.h5: (visit, detector) -> nJy per count (absent: not calibrated).
std::map<std::pair<std::int64_t, int>, double> readZeroPoints(const Repository& repo);

/// Marks `bits` in `mask` (an epoch's calexp mask) wherever the tract pixel runs `runs` fall:
/// each run pixel's centre is mapped through the sky to the epoch and the 3 x 3 epoch pixels
/// around it are marked. The two grids differ by a rotation and a few per cent in scale, so
/// nearest pixels alone would leave holes; the extra pixel also covers the resampling kernel's
/// core. Multifit masks the pixels the coadd clipped from each epoch with it.
void markTractRuns(Mask& mask, MaskPixel bits, const Wcs& epochWcs, const Wcs& tractWcs,
                   const std::vector<Span>& runs);

}  // namespace drp::pipeline
