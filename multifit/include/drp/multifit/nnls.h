// Non-negative least squares: min ||A x − y||₂ subject to x ≥ 0 (Lawson & Hanson 1974,
// "Solving Least Squares Problems", ch. 23, active-set algorithm).
#pragma once

#include <Eigen/Core>

namespace drp::multifit {

Eigen::VectorXd nnls(const Eigen::MatrixXd& a, const Eigen::VectorXd& y, int maxIterations = 0);

}  // namespace drp::multifit
