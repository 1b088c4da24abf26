from tests.training.models.segmodel_base import SegModelContract


class TestPPLiteSegT(SegModelContract):
    name = "pp_liteseg_t"
    has_detail = False


class TestPPLiteSegB(SegModelContract):
    name = "pp_liteseg_b"
    has_detail = False
