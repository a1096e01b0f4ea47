"""User-facing labels: Vietnamese by default, English available (`--lang en` or QRTRACE_LANG=en)."""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    "error": ("Lỗi", "Error"),
    "ingesting": ("Đang xử lý lượt quét", "Ingesting check-ins"),
    "tracing": ("Đang truy vết (mức F1, F2 ...)", "Tracing (hops F1, F2 ...)"),
    "index_building": ("Đang dựng chỉ mục truy vết từ kho (lượt ghé)",
                       "Building the trace index from the store (visits)"),
    "index_built": ("Đã dựng chỉ mục truy vết: {visits} lượt ghé trong {seconds:.1f} giây.",
                    "Built the trace index: {visits} visits in {seconds:.1f} s."),
    "received": ("Đã nhận", "Received"),
    "accepted": ("Hợp lệ", "Accepted"),
    "deduplicated": ("Trùng lặp (bỏ qua)", "Deduplicated"),
    "dead_lettered": ("Lỗi (lưu hàng đợi lỗi)", "Dead-lettered"),
    "unpaired": ("Check-out chưa khớp (chờ check-in muộn 48 giờ)", "Check-outs not paired yet (waiting 48 h)"),
    "visits": ("Lượt có mặt", "Visits"),
    "rate": ("sự kiện/giây", "events/s"),
    "hop": ("Mức", "Hop"),
    "person": ("Người", "Person"),
    "first_exposure": ("Tiếp xúc đầu tiên", "First exposure"),
    "risk": ("Mức nguy cơ", "Risk"),
    "risk_close": ("Tiếp xúc gần", "Close"),
    "risk_casual": ("Tiếp xúc thông thường", "Casual"),
    "rule": ("quy tắc", "rule"),
    "demo_close_sources": ("Chỉ lấy người tiếp xúc gần làm nguồn F2: F2 = {close} người "
                           "(lấy mọi người tiếp xúc: {all}).",
                           "Close contacts only as F2 sources: F2 = {close} (all contacts as sources: {all})."),
    "demo_notified": ("Đã gửi tin nhắn cho {sent} người tiếp xúc gần ({failed} không gửi được: không có số điện thoại "
                      "hoặc lỗi cổng gửi) qua cổng tệp: {path} (có số điện thoại: chỉ chủ tệp đọc được, 0600)",
                      "Warned {sent} close contacts ({failed} not sent: no phone number or a gateway error) through "
                      "the file gateway: {path} (it holds phone numbers: readable by its owner only, 0600)"),
    "demo_sites": ("Đã công bố {n} địa điểm có ca bệnh (không nêu tên người): {path}; trang công khai /public/ "
                   "khi chạy qrtrace serve.",
                   "Published {n} exposure sites (never a person): {path}; the public page is /public/ under "
                   "qrtrace serve."),
    "venue": ("Địa điểm", "Venue"),
    "overlap": ("Phút trùng", "Overlap min"),
    "source": ("Nguồn lây", "Source"),
    "evidence": ("Bằng chứng", "Evidence"),
    "cohort": ("Danh sách tiếp xúc của ca bệnh", "Contacts of case"),
    "no_contacts": ("Không tìm thấy người tiếp xúc.", "No contacts found."),
    "commune": ("Xã / thị trấn", "Commune"),
    "category": ("Loại địa điểm", "Venue category"),
    "registered": ("Đã đăng ký", "Registered"),
    "registered_short": ("Đăng ký", "Reg."),
    "active": ("Có quét", "Active"),
    "active_share": ("Tỷ lệ", "Share"),
    "scans": ("Lượt quét", "Scans"),
    "people": ("Số người", "People"),
    "office": ("Cơ quan quản lý", "Overseeing office"),
    "coverage_title": ("Triển khai quét mã QR theo xã", "QR deployment by commune"),
    "office_title": ("Theo cơ quan quản lý", "By overseeing office"),
    "zero_communes": ("Xã chưa có lượt quét nào", "Communes with zero scans"),
    "silent_venues": ("Địa điểm chưa quét", "Venues with zero scans"),
    "silent_short": ("Chưa quét", "Silent"),
    "silent_kinds": ("Loại địa điểm chưa quét", "Kinds of silent venues"),
    "more_kinds": ("+{n} loại khác", "+{n} more"),
    "period": ("Kỳ báo cáo", "Period"),
    "files": ("Tệp dữ liệu", "Files"),
    "plain_ids_warning": (
        "Cảnh báo: {path} chứa mã định danh và số điện thoại ở dạng rõ (chỉ chủ tệp đọc được, quyền 0600); "
        "xoá tệp khi không còn cần.",
        "Warning: {path} holds identifiers and phone numbers in plain text (readable by its owner only, "
        "mode 0600); delete it when no longer needed.",
    ),
    "pseudonymous_files": (
        "Tệp truy vết chỉ chứa bí danh; thêm --reidentified-exports để ghi mã định danh và số điện thoại.",
        "The trace files hold pseudonyms only; add --reidentified-exports to write identifiers and phones.",
    ),
    "store": ("Kho dữ liệu", "Store"),
    "venues_imported": ("Đã nhập địa điểm", "Venues imported"),
    "poster_written": ("Đã tạo áp phích QR", "QR poster written"),
    "reasons": ("Lý do lỗi", "Dead-letter reasons"),
    "sites_title": ("Địa điểm có ca bệnh đã công bố", "Published exposure sites"),
    "site": ("Mã điểm", "Site"),
    "from": ("Từ", "From"),
    "to": ("Đến", "To"),
    "advice": ("Khuyến cáo", "Advice"),
    "case": ("Ca bệnh", "Case"),
    "status": ("Trạng thái", "Status"),
    "site_active": ("đang công bố", "active"),
    "site_withdrawn": ("đã rút", "withdrawn"),
    "published_by": ("Người công bố", "Published by"),
    "no_sites": ("Chưa có địa điểm nào được công bố.", "No exposure site is published."),
    "sites_published": ("Đã công bố {n} địa điểm ({new} mới, {same} đã có từ trước).",
                        "Published {n} exposure sites ({new} new, {same} already published)."),
    "sites_withdrawn": ("Đã rút {n} địa điểm khỏi danh sách công khai.",
                        "Withdrew {n} exposure sites from the public list."),
    # deployment census (qrtrace census ..., the coverage report's denominator)
    "census_imported": ("Đã nhập {n} cơ sở vào danh sách phải triển khai ({refused} dòng bị từ chối).",
                        "Imported {n} establishments into the deployment census ({refused} rows refused)."),
    "census_refused_row": ("Dòng {row}, cột {column}: {reason}", "Row {row}, column {column}: {reason}"),
    "census_title": ("Danh sách cơ sở phải triển khai (điều tra)", "Deployment census"),
    "census_required": ("Phải triển khai", "Required"),
    "census_required_registered": ("Đã đăng ký / phải triển khai", "Registered of required"),
    "census_none": ("Xã chưa có danh sách cơ sở (số liệu chỉ tính địa điểm đã đăng ký)",
                    "Communes without a census (figures count registered venues only)"),
    "census_unregistered": ("Cơ sở chưa đăng ký (cần đến tận nơi)", "Establishments not registered (to visit)"),
    "census_empty": ("Chưa có cơ sở nào trong danh sách.", "The census holds no establishment."),
    "census_linked": ("Đã liên kết địa điểm {venue} với cơ sở {establishment}.",
                      "Linked venue {venue} to establishment {establishment}."),
}


def t(key: str, lang: str = "vi") -> str:
    vi, en = LABELS[key]
    return en if lang == "en" else vi
