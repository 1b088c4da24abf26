from tests.training.models.segmodel_base import SegModelContract


class TestSTDC1Seg(SegModelContract):
    name = "stdc1_seg"
    has_detail = True


class TestSTDC2Seg(SegModelContract):
    name = "stdc2_seg"
    has_detail = True
