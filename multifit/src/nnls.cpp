#include "drp/multifit/nnls.h"

#include <Eigen/Dense>

namespace drp::multifit {

Eigen::VectorXd nnls(const Eigen::MatrixXd& a, const Eigen::VectorXd& y, int maxIterations) {
    const int n = static_cast<int>(a.cols());
    if (maxIterations <= 0) maxIterations = 3 * n + 30;
    Eigen::VectorXd x = Eigen::VectorXd::Zero(n);
    std::vector<bool> passive(n, false);
    const double tol = 1e-12 * a.norm() * std::max(1.0, y.norm());

    auto solvePassive = [&](Eigen::VectorXd& z) {
        std::vector<int> idx;
        for (int j = 0; j < n; ++j)
            if (passive[j]) idx.push_back(j);
        Eigen::MatrixXd ap(a.rows(), idx.size());
        for (std::size_t k = 0; k < idx.size(); ++k) ap.col(k) = a.col(idx[k]);
        Eigen::VectorXd zp = ap.colPivHouseholderQr().solve(y);
        z.setZero(n);
        for (std::size_t k = 0; k < idx.size(); ++k) z(idx[k]) = zp(k);
    };

    for (int outer = 0; outer < maxIterations; ++outer) {
        Eigen::VectorXd w = a.transpose() * (y - a * x);
        int best = -1;
        double wmax = tol;
        for (int j = 0; j < n; ++j)
            if (!passive[j] && w(j) > wmax) {
                wmax = w(j);
                best = j;
            }
        if (best < 0) break;
        passive[best] = true;
        for (int inner = 0; inner < maxIterations; ++inner) {
            Eigen::VectorXd z;
            solvePassive(z);
            bool feasible = true;
            for (int j = 0; j < n; ++j)
                if (passive[j] && z(j) <= 0) feasible = false;
            if (feasible) {
                x = z;
                break;
            }
            double alpha = 1.0;
            for (int j = 0; j < n; ++j)
                if (passive[j] && z(j) <= 0) alpha = std::min(alpha, x(j) / (x(j) - z(j)));
            x += alpha * (z - x);
            for (int j = 0; j < n; ++j)
                if (passive[j] && x(j) <= 1e-15) {
                    passive[j] = false;
                    x(j) = 0;
                }
        }
    }
    return x;
}

}  // namespace drp::multifit
