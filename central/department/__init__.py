"""A department's back office: the service a department (公安, 人社, 医保 …) runs beside its system.

It holds the department's cases in its own store (:mod:`central.department.store`: the
records' signed bytes, verified as every store verifies them), takes central's events off its
broker queue and sends its signed decisions back over RPC (:mod:`central.department.service`),
and offers the department desk, the web page where a department clerk decides
(:mod:`central.department.desk`, :mod:`central.department.web`). The names and messages it
shares with central are :mod:`central.department.contract`; the broker's errors become
Tongban's in :mod:`central.department.broker`.

It lives under ``central`` because a department is central's party — enrolled by central,
linked to central's broker and to nothing else — and it shares the contract with central's
publisher; it never imports central's store, authority or services (an import-linter
contract holds that), so a department's host runs it without any of central's data.
"""
