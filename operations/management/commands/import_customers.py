from customers.imports import CustomerImport, open_sheet

from ._sheet_import import SheetImportCommand


class Command(SheetImportCommand):
    help = (
        "Import customers from a .csv or .xlsx file whose first row names the columns: name (required), "
        "company, email, phone, status, external_id, tags (comma-separated; English or Chinese headers: 姓名, "
        "公司, 邮箱, 电话, 状态, 外部编号, 标签; other columns are ignored). Each row is checked with the same rules as the API, and every "
        "rejected row is reported with its line number. Customers are matched by external_id (another "
        "system's id), then by email, ignoring case: a match is left alone unless --update-existing is given. "
        "CSV files may be UTF-8 (with or without BOM) or GB18030. "
        "The file is read whole before any row is written, and refused if it passes the import bounds "
        "(DJANGO_IMPORT_MAX_BYTES, _MAX_ROWS, _MAX_CELL_CHARS, _MAX_UNZIPPED_BYTES; --max-rows and --max-bytes "
        "raise the first two for one run). Exits with status 1 when any row was rejected."
    )
    importer = CustomerImport
    open_sheet = staticmethod(open_sheet)
    records = "customers"
