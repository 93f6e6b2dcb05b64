"""Reading VP8 and H.264 bitstreams without decoding them: keyframes and picture sizes, for the
forwarder (what a late joiner needs) and the recorder (where a file may start, and its size)."""

from __future__ import annotations


def vp8_is_keyframe(data: bytes) -> bool:
    """RFC 6386 9.1: bit 0 of the first byte of the frame tag is 0 for a key frame."""
    return bool(data) and (data[0] & 0x01) == 0


def h264_is_keyframe(data: bytes) -> bool:
    """True when an Annex B access unit holds an IDR slice (5) or a sequence parameter set (7)."""
    start = 0
    while True:
        index = data.find(b"\x00\x00\x01", start)
        if index < 0 or index + 3 >= len(data):
            return False
        nal_type = data[index + 3] & 0x1F
        if nal_type in (5, 7):
            return True
        start = index + 3


def vp8_dimensions(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 key frame header (RFC 6386 9.1), or None for other frames."""
    if len(data) < 10 or not vp8_is_keyframe(data) or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return width, height


def h264_nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit (start codes 00 00 01 or 00 00 00 01)."""
    units = []
    index = data.find(b"\x00\x00\x01")
    while index >= 0:
        start = index + 3
        index = data.find(b"\x00\x00\x01", start)
        end = len(data) if index < 0 else index
        # A 4-byte start code leaves its leading zero at the end of the previous unit.
        unit = data[start:end].rstrip(b"\x00") if index >= 0 else data[start:end]
        if unit:
            units.append(unit)
    return units


class _Bits:
    """An H.264 RBSP bit reader (the emulation prevention bytes 00 00 03 taken out)."""

    def __init__(self, data: bytes) -> None:
        self._data = data.replace(b"\x00\x00\x03", b"\x00\x00")
        self._pos = 0

    def bit(self) -> int:
        byte = self._pos >> 3
        if byte >= len(self._data):
            raise ValueError("SPS is truncated")
        value = (self._data[byte] >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        """Unsigned exp-Golomb (ITU-T H.264 9.1)."""
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-Golomb code in SPS")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale if next_scale != 0 else last


def h264_sps_dimensions(sps: bytes) -> tuple[int, int]:
    """Width and height (after cropping) from an H.264 sequence parameter set NAL unit, header
    byte included (ITU-T H.264 7.3.2.1.1)."""
    bits = _Bits(sps[1:])
    profile_idc = bits.bits(8)
    bits.bits(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = 0
    if profile_idc in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma_format_idc = bits.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = bits.bit()
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.bit()  # qpprime_y_zero_transform_bypass_flag
        if bits.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if bits.bit():
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.bit()
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_map_units = bits.ue() + 1
    frame_mbs_only = bits.bit()
    if not frame_mbs_only:
        bits.bit()  # mb_adaptive_frame_field_flag
    bits.bit()  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_map_units * 16
    if bits.bit():  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        chroma = 0 if separate_colour_plane else chroma_format_idc
        crop_x = 1 if chroma == 0 else (2 if chroma in (1, 2) else 1)
        crop_y = (1 if chroma in (0, 2, 3) else 2) * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise ValueError("SPS gives no picture size")
    return width, height


def h264_dimensions(data: bytes) -> tuple[int, int] | None:
    """Width and height from the SPS of an Annex B access unit, or None when it has none (only
    an access unit with an SPS starts a recording: a decoder needs it first)."""
    for unit in h264_nal_units(data):
        if unit[0] & 0x1F == 7:
            try:
                return h264_sps_dimensions(unit)
            except ValueError:
                return None
    return None
