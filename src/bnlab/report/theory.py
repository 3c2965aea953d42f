"""The theory section every report ends with: the original's three questions, answered with references."""

from __future__ import annotations

from .document import Block, Bullets, Equation, Heading, Para

THEORY: list[Block] = [
    Heading(2, "Theory: the original's three questions, answered"),
    Heading(3, "1. What is batch normalization?"),
    Para(
        "Batch normalization (Ioffe & Szegedy 2015) standardizes every unit of a layer over the current "
        "mini-batch, then applies a learned affine map. For the m values x₁ … xₘ of one unit in a "
        "mini-batch B:"
    ),
    Equation("μ_B = (1/m) Σᵢ xᵢ\nσ²_B = (1/m) Σᵢ (xᵢ − μ_B)²\nx̂ᵢ = (xᵢ − μ_B) / √(σ²_B + ε)\nyᵢ = γ·x̂ᵢ + β"),
    Para(
        "γ and β (one pair per unit) are **learned parameters**, trained by gradient descent like the "
        "weights; with γ = √(σ²_B + ε) and β = μ_B the layer can undo the normalization, so nothing is "
        "lost. ε (10⁻³ in Keras, 10⁻⁵ in PyTorch) keeps the division finite. Gradients flow through μ_B and "
        "σ²_B: the normalization is part of the model, not preprocessing. The paper normalizes the "
        "pre-activation Wx + b (β then replaces the bias b); the original study put BN after the ReLU "
        "(bnlab: `placement = after`)."
    ),
    Heading(3, "2. What does it change between training and inference?"),
    Para(
        "In training, each batch is normalized with its own μ_B and σ²_B, and running estimates are updated "
        "as exponential moving averages. They are **non-trained state** (buffers, not parameters: the "
        "optimizer never touches them):"
    ),
    Equation("μ̂ ← ρ·μ̂ + (1 − ρ)·μ_B\nσ̂² ← ρ·σ̂² + (1 − ρ)·σ²_B"),
    Para(
        "with ρ = 0.99 in Keras (its `momentum`) and 0.9 in PyTorch (whose `momentum = 0.1` is 1 − ρ; "
        "PyTorch keeps the unbiased m/(m − 1)·σ²_B). At inference (Keras `training=False`, PyTorch "
        "`model.eval()`) the running estimates replace the batch statistics:"
    ),
    Equation("y = γ·(x − μ̂) / √(σ̂² + ε) + β"),
    Para(
        "a fixed affine map per unit that can be folded into the neighbouring linear layer, so it costs "
        "nothing at inference. What changes: batch statistics become running ones, an example's output no "
        "longer depends on the other examples in its batch, the running estimates stop updating, and the "
        "output is deterministic. This is also why Keras's train accuracy (training mode, averaged over the "
        "epoch while the weights move) is not directly comparable with test accuracy."
    ),
    Heading(3, "3. Why does it help, and when not?"),
    Bullets(
        [
            "**Not by reducing internal covariate shift.** Santurkar et al. (2018) injected random, "
            "time-varying shifts and scales after every BN layer (more distributional instability, not "
            "less); the networks trained as well as with plain BN, and by their gradient-based measure BN "
            "does not reduce internal covariate shift. They argue instead that BN makes the loss landscape "
            "smoother: the loss and its gradient change more slowly along the step (smaller Lipschitz "
            "constants, better β-smoothness; their Theorem 4.1 bounds the gradient norm after BN by γ/σ "
            "times the one before it), so gradients are more predictive and larger steps are safe. That is "
            "their finding on deep convolutional nets; bnlab's `smoothness` and `ics` studies measure both "
            "on this MLP (loss variation, gradient predictiveness, effective β along the actual update, and "
            "the curvature ‖Hg‖/‖g‖), and their reports say what the data show here rather than this "
            "paragraph.",
            "**Larger learning rates.** Bjorck et al. (2018): the main benefit is that BN allows much "
            "larger learning rates. Without BN, large steps make activations and gradients grow with depth "
            "and training diverges; trained at the same small learning rate, the BN network loses most of "
            "its advantage. The faster convergence and the better generalization both come from the larger "
            "learning rate.",
            "**Regularization** is a side effect of the batch noise in μ_B and σ²_B; it is mild, shrinks as "
            "the batch grows, and on a small MLP it may not show at all (finding c measures it).",
            "**Initialization.** BN makes a unit's output invariant to the scale of its incoming weights "
            "(BN(a·Wx) = BN(Wx) for a > 0, up to ε), which reduces sensitivity to the initial scale. It "
            "does not make the network invariant to shifts or scales of the data in general.",
            "**Small batches.** With few examples, μ_B and σ²_B are noisy: Wu & He (2018) show BN's error "
            "rising quickly at 8 images per batch or fewer (ResNet-50, ImageNet), while group "
            "normalization, which does not use the batch, is unaffected. BN also couples the examples of a "
            "batch and behaves differently in training and inference (question 2). Its compute overhead is "
            "small.",
        ]
    ),
    Heading(2, "References"),
    Bullets(
        [
            "Ioffe, S. & Szegedy, C. (2015). Batch Normalization: Accelerating Deep Network Training by "
            "Reducing Internal Covariate Shift. ICML 2015. arXiv:1502.03167.",
            "Santurkar, S., Tsipras, D., Ilyas, A. & Mądry, A. (2018). How Does Batch Normalization Help "
            "Optimization? NeurIPS 2018. arXiv:1805.11604.",
            "Bjorck, J., Gomes, C., Selman, B. & Weinberger, K. Q. (2018). Understanding Batch "
            "Normalization. NeurIPS 2018. arXiv:1806.02375.",
            "Wu, Y. & He, K. (2018). Group Normalization. ECCV 2018. arXiv:1803.08494.",
        ]
    ),
]
