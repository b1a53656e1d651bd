"""Built-in 1-D convolutional ECG architectures and the registry that builds them.

Two architectures are registered:

``ecgresnet``
    The small 2-block residual network whose pretrained PTB-XL weights ship in
    ``examples/ptbxl_model/`` (iskoo-14/ecgresnet-ptbxl, Apache-2.0). Tensor names match
    that checkpoint exactly (``stem.*``, ``blocks.{0,1}.*``, ``head.*``).
``resnet1d``
    The same residual block stacked to any depth and width (``widths``, ``blocks_per_stage``).

Both take input of shape ``(batch, leads, samples)`` and return logits ``(batch, classes)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ecgaudit.errors import ModelLoadError

__all__ = ["ARCHITECTURES", "ECGResNet", "ResBlock1d", "ResNet1D", "build_architecture"]


class ResBlock1d(nn.Module):
    """Residual block: conv-bn-relu-dropout-conv-bn plus an identity or 1x1 projection shortcut.

    Parameters
    ----------
    in_ch, out_ch : int
        Input and output channels.
    stride : int
        Stride of the first convolution (and of the projection shortcut).
    kernel_size : int
        Odd kernel size of both convolutions.
    dropout : float
        Dropout probability between the two convolutions.
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int = 1, kernel_size: int = 7, dropout: float = 0.2
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel_size, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel_size, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(out_ch)
        self.shortcut: nn.Module
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm1d(out_ch)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape ``(batch, in_ch, length)``."""
        out = self.drop(self.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet1D(nn.Module):
    """A configurable 1-D ResNet for multi-lead ECG classification.

    Parameters
    ----------
    n_leads : int
        Input channels (ECG leads).
    n_classes : int
        Output units (logits).
    widths : sequence of int
        Channels of each stage; stage ``i > 0`` downsamples by 2.
    blocks_per_stage : int
        Residual blocks per stage.
    stem_width : int, optional
        Channels of the stem convolution (default: ``widths[0]``).
    stem_kernel, kernel_size : int
        Kernel sizes of the stem and of the residual convolutions.
    dropout : float
        Dropout inside each block.
    """

    def __init__(
        self,
        n_leads: int = 12,
        n_classes: int = 5,
        widths: Sequence[int] = (64, 128, 192, 256),
        blocks_per_stage: int = 2,
        stem_width: int | None = None,
        stem_kernel: int = 15,
        kernel_size: int = 7,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if not widths or blocks_per_stage < 1:
            raise ModelLoadError("resnet1d needs at least one stage width and one block per stage")
        stem_ch = stem_width or widths[0]
        self.stem = nn.Sequential(
            nn.Conv1d(
                n_leads, stem_ch, stem_kernel, stride=2, padding=stem_kernel // 2, bias=False
            ),
            nn.BatchNorm1d(stem_ch),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(kernel_size=3, stride=2, padding=1),
        )
        blocks: list[nn.Module] = []
        in_ch = stem_ch
        for stage, width in enumerate(widths):
            for b in range(blocks_per_stage):
                stride = 2 if (stage > 0 and b == 0) else 1
                blocks.append(ResBlock1d(in_ch, width, stride, kernel_size, dropout))
                in_ch = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(in_ch, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(batch, n_classes)`` for ``x`` of shape ``(batch, leads, samples)``."""
        return self.head(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class ECGResNet(ResNet1D):
    """The 2-block ECG ResNet of iskoo-14/ecgresnet-ptbxl (about 250k parameters).

    Stem Conv1d(leads->64, k=15, s=2) + BN + ReLU + MaxPool(3, 2); blocks 64->64 (stride 1)
    and 64->128 (stride 2) with kernel 7; global average pooling; Linear(128->classes).

    Parameters
    ----------
    n_leads : int
        Input channels (12 for the pretrained weights).
    n_classes : int
        Output units (5 for the pretrained weights: NORM, MI, STTC, CD, HYP).
    dropout : float
        Dropout inside each block (inactive at inference).
    """

    def __init__(self, n_leads: int = 12, n_classes: int = 5, dropout: float = 0.2) -> None:
        super().__init__(
            n_leads=n_leads,
            n_classes=n_classes,
            widths=(64, 128),
            blocks_per_stage=1,
            stem_width=64,
            dropout=dropout,
        )


#: Registered architectures: name -> constructor taking ``n_leads``, ``n_classes`` and params.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "ecgresnet": ECGResNet,
    "resnet1d": ResNet1D,
}


def build_architecture(
    name: str, n_leads: int, n_classes: int, params: dict[str, Any] | None = None
) -> nn.Module:
    """Instantiate a registered architecture in evaluation mode.

    Parameters
    ----------
    name : str
        A key of :data:`ARCHITECTURES`.
    n_leads, n_classes : int
        Input channels and output units.
    params : dict, optional
        Extra keyword arguments of the constructor (e.g. ``widths`` for ``resnet1d``).

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ModelLoadError
        If the name is unknown or the parameters do not fit the constructor.
    """
    if name not in ARCHITECTURES:
        raise ModelLoadError(
            f"unknown architecture '{name}'; built-in architectures: {sorted(ARCHITECTURES)}. "
            "For another network, export it to TorchScript or ONNX and point --model at that file."
        )
    try:
        model = ARCHITECTURES[name](n_leads=n_leads, n_classes=n_classes, **(params or {}))
    except TypeError as err:
        raise ModelLoadError(f"architecture '{name}': invalid parameters {params}: {err}") from None
    return model.eval()
