from .msdeformattn import MSDeformAttnPixelDecoder

__all__ = ["MSDeformAttnPixelDecoder"]
