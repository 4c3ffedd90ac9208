"""Evaluation metrics: visual quality (PSNR, SSIM), temporal consistency (IFC), lip sync (LSE-D/C, LMD)."""
from lipforge.metrics.image import half_abs_errors, psnr, ssim, video_psnr, video_ssim
from lipforge.metrics.landmarks import (
    MOUTH,
    correlation,
    landmark_distance,
    mouth_opening,
)
from lipforge.metrics.ranking import roc_auc
from lipforge.metrics.sync import lse_scores, offset_distances
from lipforge.metrics.temporal import inter_frame_consistency

__all__ = [
    "MOUTH",
    "correlation",
    "half_abs_errors",
    "inter_frame_consistency",
    "landmark_distance",
    "lse_scores",
    "mouth_opening",
    "offset_distances",
    "psnr",
    "roc_auc",
    "ssim",
    "video_psnr",
    "video_ssim",
]
