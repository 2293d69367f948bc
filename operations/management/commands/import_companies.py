from companies.imports import CompanyImport, open_sheet

from ._sheet_import import SheetImportCommand


class Command(SheetImportCommand):
    help = (
        "Import companies from a .csv or .xlsx file whose first row names the columns: name (required), "
        "domain, website, phone, address, industry, size, notes (English or Chinese headers: 公司名称, 域名, 网站, "
        "电话, 地址, 行业, 规模, 备注; other columns are ignored). Each row is checked with the same rules as the "
        "API, and every rejected row is reported with its line number. Companies are matched by domain, written "
        "any way (https://www.Example.com/ is example.com): a match is left alone unless --update-existing is "
        "given. CSV files may be UTF-8 (with or without BOM) or GB18030. The file is read whole before any row is "
        "written, within the import bounds (as import_customers). Exits with status 1 when any row was rejected."
    )
    importer = CompanyImport
    open_sheet = staticmethod(open_sheet)
    records = "companies"
