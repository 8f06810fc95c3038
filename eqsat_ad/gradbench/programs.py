"""The GradBench objectives, each written once in the array language.

Every derivative the tool answers with is made from these texts by ``ea.grad`` /
``ea.jvp`` (see :mod:`eqsat_ad.gradbench.evals`), then optimised and compiled.  The
programs follow GradBench's reference implementations (its ``evals/*/README.md`` and the
C++/JAX tools); where a formula is not obvious the comment says which line it mirrors.
"""
from __future__ import annotations

# f(x) = x * x; "double" is its gradient
HELLO = "(fun ((x real)) (* x x))"

# max-shifted log-sum-exp (the eval asks for the shift by the maximum).  The maximum is read
# at the index of a maximum (argmax, np.argmax in the backend): the index carries no tangent,
# and the tangent of x[argmax] is a one-hot the optimiser folds away
LSE = """
(fun ((x (vec n)))
  (let ((m (get x (argmax x))))
    (+ m (log (sum n (lambda (i) (exp (- (get x i) m))))))))
"""

# linear least squares: t_i = -1 + 2 i / (n - 1), residual sign(t_i) - sum_j x_j t_i^j,
# objective half the sum of squared residuals over i < n.  t^0 is written 1.0: the tangent
# rule of a constant power, c p^(c-1) dp, is 0 * inf = nan at p = 0 for c = 0 (t_i = 0 when n
# is odd), although dp is 0 here
LLSQ = """
(fun ((x (vec m)) (n size))
  (/ (sum n (lambda (i)
       (let ((t (+ -1.0 (/ (* (real i) 2.0) (- (real n) 1.0))))
             (r (- (if (> t 0.0) 1.0 (if (< t 0.0) -1.0 0.0))
                   (sum m (lambda (j) (* (get x j) (if (= j 0) 1.0 (pow t (real j)))))))))
         (* r r))))
     2.0))
"""

# k-means cost: sum over points of the squared distance to the nearest centroid (read at the
# index of the nearest, argmin, as LSE's maximum)
KMEANS = """
(fun ((P (mat n d)) (C (mat k d)))
  (sum n (lambda (i)
    (let ((dist (build k (lambda (j)
                  (sum d (lambda (c) (let ((z (- (get (get C j) c) (get (get P i) c)))) (* z z))))))))
      (get dist (argmin dist))))))
"""

# Runge-Kutta 4 over s steps of y' = f(y), f(y)_0 = x_0, f(y)_i = x_i y_{i-1}, from y = 0 to
# t = 2; the primal is the final state, the gradient that of its last element
_ODE_PARAMS = "((x (vec n)) (s size))"
_ODE_FINAL = """(let ((h (/ 2.0 (real s))))
    (ifold (lambda (y step)
      (let ((k1 (build n (lambda (i) (if (= i 0) (get x i) (* (get x i) (get y (- i 1)))))))
            (y1 (build n (lambda (i) (+ (get y i) (* (/ h 2.0) (get k1 i))))))
            (k2 (build n (lambda (i) (if (= i 0) (get x i) (* (get x i) (get y1 (- i 1)))))))
            (y2 (build n (lambda (i) (+ (get y i) (* (/ h 2.0) (get k2 i))))))
            (k3 (build n (lambda (i) (if (= i 0) (get x i) (* (get x i) (get y2 (- i 1)))))))
            (y3 (build n (lambda (i) (+ (get y i) (* h (get k3 i))))))
            (k4 (build n (lambda (i) (if (= i 0) (get x i) (* (get x i) (get y3 (- i 1))))))))
        (build n (lambda (i)
          (+ (get y i) (* (/ h 6.0) (+ (get k1 i) (+ (* 2.0 (get k2 i)) (+ (* 2.0 (get k3 i)) (get k4 i))))))))))
      (build n (lambda (i) 0.0))
      s))"""
ODE = f"""
(fun {_ODE_PARAMS}
  {_ODE_FINAL})
"""


def ode_objective(output: str) -> str:
    """The ODE program with a real result: its final state bound to ``yT`` and ``output`` (an
    expression of ``yT``, ``x`` and the sizes ``n``, ``s``) the result -- the one declaration of
    the RK4 program the benchmarks and tests differentiate (GradBench's gradient is that of
    ``(get yT (- n 1))``)."""
    return f"""
(fun {_ODE_PARAMS}
  (let ((yT {_ODE_FINAL}))
    {output}))
"""

# Gaussian mixture model log-likelihood with a Wishart prior (GradBench's gmm, the JAX
# tool's gmm_objective); its log-sum-exps are max-shifted as LSE's.  l holds the strict lower triangle of each L_j column by column:
# L_j[r][c] (r > c) is l_j[c d - c (c + 1) / 2 + r - c - 1], computed with an integer
# division (no host-side index table).  const is the part that depends on
# the sizes only: -n d log(2 pi) / 2 + k (nn d log(gamma / sqrt 2) - multigammaln(nn / 2, d))
# with nn = d + m + 1, computed by the host (log-gamma is not a primitive of the language).
GMM = """
(fun ((alpha (vec k)) (mu (mat k d)) (q (mat k d)) (l (mat k L)) (x (mat n d))
      (m real) (gamma real) (const real))
  (let ((Ls (build k (lambda (j) (build d (lambda (r) (build d (lambda (c)
              (if (< c r)
                  (get (get l j) (+ (- (* c d) (div (* c (+ c 1)) 2)) (- (- r c) 1)))
                  0.0))))))))
        (sum_qs (build k (lambda (j) (sum d (lambda (r) (get (get q j) r))))))
        (lse_alpha (let ((am (get alpha (argmax alpha))))
                     (+ am (log (sum k (lambda (j) (exp (- (get alpha j) am))))))))
        (slse (sum n (lambda (i)
                (let ((inner (build k (lambda (j)
                        (let ((xc (build d (lambda (c) (- (get (get x i) c) (get (get mu j) c))))))
                          (- (+ (get alpha j) (get sum_qs j))
                             (* 0.5 (sum d (lambda (r)
                                      (let ((v (+ (* (exp (get (get q j) r)) (get xc r))
                                                  (sum d (lambda (c) (* (get (get (get Ls j) r) c) (get xc c)))))))
                                        (* v v))))))))))
                      (im (get inner (argmax inner))))
                  (+ im (log (sum k (lambda (j) (exp (- (get inner j) im))))))))))
        (prior (sum k (lambda (j)
                 (- (* (* 0.5 (* gamma gamma))
                       (+ (sum d (lambda (r) (let ((e (exp (get (get q j) r)))) (* e e))))
                          (sum L (lambda (p) (let ((e (get (get l j) p))) (* e e))))))
                    (* m (get sum_qs j)))))))
    (+ const (- (- slse (* (real n) lse_alpha)) prior))))
"""

# ADBench's LSTM (GradBench's lstm, cpp/gradbench/evals/lstm.hpp): l layers of b hidden units;
# main row 2j holds layer j's weights (forget, input, output gates, change), row 2j+1 its
# biases; state row 2j the hidden vector, 2j+1 the cell; the loss is the mean over the c - 1
# steps and b bits of -gold * log-softmax(prediction), the log-sum-exp with the extra 2 of
# ADBench (log (2 + sum exp)).  The layers run in an inner fold whose accumulator is the input
# of the next layer and the whole state matrix, two rows of which it replaces.
LSTM = """
(fun ((main (mat L2 B4)) (extra (mat 3 b)) (state (mat L2 b)) (seq (mat c b)) (l size))
  (let ((final
    (ifold (lambda (acc t)
      (let ((S (fst acc))
            (total (snd acc))
            (x0 (build b (lambda (i) (* (get (get seq t) i) (get (get extra 0) i)))))
            (layers
              (ifold (lambda (la j)
                (let ((x (fst la))
                      (S2 (snd la))
                      (w (get main (* 2 j)))
                      (bi (get main (+ (* 2 j) 1)))
                      (h (get S2 (* 2 j)))
                      (cl (get S2 (+ (* 2 j) 1)))
                      (cnew (build b (lambda (i)
                        (+ (* (get cl i) (sigmoid (+ (* (get x i) (get w i)) (get bi i))))
                           (* (sigmoid (+ (* (get h i) (get w (+ b i))) (get bi (+ b i))))
                              (tanh (+ (* (get h i) (get w (+ (* 3 b) i))) (get bi (+ (* 3 b) i)))))))))
                      (hnew (build b (lambda (i)
                        (* (sigmoid (+ (* (get x i) (get w (+ (* 2 b) i))) (get bi (+ (* 2 b) i))))
                           (tanh (get cnew i)))))))
                  (pair hnew
                        (build L2 (lambda (r) (build b (lambda (i)
                          (if (= r (* 2 j)) (get hnew i)
                            (if (= r (+ (* 2 j) 1)) (get cnew i) (get (get S2 r) i))))))))))
                (pair x0 S) l))
            (xo (fst layers))
            (ypred (build b (lambda (i) (+ (* (get xo i) (get (get extra 1) i)) (get (get extra 2) i)))))
            (lse (log (+ 2.0 (sum b (lambda (i) (exp (get ypred i)))))))
            (gold (get seq (+ t 1))))
        (pair (snd layers) (+ total (sum b (lambda (i) (* (get gold i) (- (get ypred i) lse))))))))
      (pair state 0.0) (- c 1))))
  (neg (/ (snd final) (* (real (- c 1)) (real b))))))
"""

# determinant by Gaussian elimination without pivoting (GradBench's det eval uses cofactor
# expansion; both give det A for a matrix whose leading minors are non-zero): fold k
# eliminates column k below the diagonal; det = product of the pivots
DET = """
(fun ((A (mat ell ell)))
  (let ((U (ifold (lambda (M k)
             (build ell (lambda (i) (build ell (lambda (j)
               (if (> i k)
                   (- (get (get M i) j) (* (/ (get (get M i) k) (get (get M k) k)) (get (get M k) j)))
                   (get (get M i) j)))))))
           A ell)))
    (ifold (lambda (p i) (* p (get (get U i) i))) 1.0 ell)))
"""

# bundle adjustment (ADBench's ba, cpp/gradbench/evals/ba.hpp): for each observation o of
# point op[o] by camera oc[o], the weighted reprojection error w_o (proj - feat_o) through
# the Rodrigues rotation (rot = cam[0:3], centre cam[3:6]), the radial distortion (cam[9:11]),
# focal length cam[6] and principal point cam[7:9]; and the weight error 1 - w_o^2
BA = """
(fun ((cams (mat n C)) (X (mat m D)) (w (vec p)) (feats (mat p E)) (oc (array index p)) (op (array index p)))
  (pair
    (build p (lambda (o)
      (let ((cam (get cams (get oc o)))
            (pt (get X (get op o)))
            (x0 (- (get pt 0) (get cam 3)))
            (x1 (- (get pt 1) (get cam 4)))
            (x2 (- (get pt 2) (get cam 5)))
            (r0 (get cam 0))
            (r1 (get cam 1))
            (r2 (get cam 2))
            (sq (+ (* r0 r0) (+ (* r1 r1) (* r2 r2))))
            (theta (sqrt sq))
            (ct (cos theta))
            (st (sin theta))
            (w0 (/ r0 theta))
            (w1 (/ r1 theta))
            (w2 (/ r2 theta))
            (tmp (* (+ (* w0 x0) (+ (* w1 x1) (* w2 x2))) (- 1.0 ct)))
            (X0 (if (= sq 0.0) (+ x0 (- (* r1 x2) (* r2 x1)))
                    (+ (* x0 ct) (+ (* (- (* w1 x2) (* w2 x1)) st) (* w0 tmp)))))
            (X1 (if (= sq 0.0) (+ x1 (- (* r2 x0) (* r0 x2)))
                    (+ (* x1 ct) (+ (* (- (* w2 x0) (* w0 x2)) st) (* w1 tmp)))))
            (X2 (if (= sq 0.0) (+ x2 (- (* r0 x1) (* r1 x0)))
                    (+ (* x2 ct) (+ (* (- (* w0 x1) (* w1 x0)) st) (* w2 tmp)))))
            (p0 (/ X0 X2))
            (p1 (/ X1 X2))
            (rsq (+ (* p0 p0) (* p1 p1)))
            (L (+ 1.0 (+ (* (get cam 9) rsq) (* (get cam 10) (* rsq rsq))))))
        (build E (lambda (k)
          (* (get w o) (- (if (= k 0) (+ (* (* p0 L) (get cam 6)) (get cam 7))
                                      (+ (* (* p1 L) (get cam 6)) (get cam 8)))
                          (get (get feats o) k))))))))
    (build p (lambda (o) (- 1.0 (* (get w o) (get w o)))))))
"""

SOURCES = {"hello": HELLO, "lse": LSE, "llsq": LLSQ, "kmeans": KMEANS, "ode": ODE, "gmm": GMM,
           "lstm": LSTM, "det": DET, "ba": BA}
