// The PostgreSQL JDBC driver against a running `kpidb serve`, the way Metabase,
// DBeaver and Tableau use it: DatabaseMetaData.getTables/getColumns/getPrimaryKeys/
// getImportedKeys/getExportedKeys/getFunctions and a PreparedStatement with parameters. Run with the driver on the class path:
//   java -cp /usr/share/java/postgresql.jar JdbcCheck.java
import java.math.BigDecimal;
import java.sql.*;
import java.util.*;

public class JdbcCheck {
    static void check(String name, boolean ok, Object detail) {
        if (!ok) {
            System.out.println("FAIL " + name + ": " + detail);
            System.exit(1);
        }
        System.out.println("ok   " + name);
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + System.getenv("KPIDB_PG_HOST") + ":"
            + System.getenv("KPIDB_PG_PORT") + "/kpidb?sslmode=disable";
        String user = System.getenv("KPIDB_PG_USER");
        String password = System.getenv("KPIDB_PG_PASSWORD");
        BigDecimal expected = new BigDecimal(System.getenv("KPIDB_EXPECTED_SCORE"));
        int ranked = Integer.parseInt(System.getenv("KPIDB_EXPECTED_RANKED"));

        try (Connection conn = DriverManager.getConnection(url, user, password)) {
            DatabaseMetaData meta = conn.getMetaData();
            Set<String> tables = new TreeSet<>();
            try (ResultSet rs = meta.getTables(null, null, "%", new String[] {"TABLE"})) {
                while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
            }
            check("getTables", tables.containsAll(List.of("departments", "dept_scores",
                "evaluations", "exante_reviews", "indicators", "project_scores", "projects",
                "unit_budgets")), tables);
            Set<String> columns = new TreeSet<>();
            try (ResultSet rs = meta.getColumns(null, null, "dept_scores", "%")) {
                while (rs.next()) columns.add(rs.getString("COLUMN_NAME"));
            }
            check("getColumns", columns.containsAll(List.of("year", "dept_code",
                "indicator_code", "score")), columns);

            // The data model's key and references, as DBeaver and Metabase draw them.
            List<String> key = new ArrayList<>();
            try (ResultSet rs = meta.getPrimaryKeys(null, null, "dept_scores")) {
                while (rs.next()) {
                    key.add(rs.getShort("KEY_SEQ") + ":" + rs.getString("COLUMN_NAME") + "@" + rs.getString("PK_NAME"));
                }
            }
            check("getPrimaryKeys", key.equals(List.of("1:year@dept_scores_pkey",
                "2:dept_code@dept_scores_pkey", "3:indicator_code@dept_scores_pkey")), key);
            Set<String> references = new TreeSet<>();
            try (ResultSet rs = meta.getImportedKeys(null, null, "dept_scores")) {
                while (rs.next()) {
                    references.add(rs.getString("FKCOLUMN_NAME") + "->" + rs.getString("PKTABLE_NAME")
                        + "." + rs.getString("PKCOLUMN_NAME") + "@" + rs.getString("FK_NAME"));
                }
            }
            check("getImportedKeys", references.equals(new TreeSet<>(List.of(
                "dept_code->departments.dept_code@dept_scores_dept_code_fkey",
                "indicator_code->indicators.indicator_code@dept_scores_indicator_code_fkey"))), references);
            Set<String> exported = new TreeSet<>();
            try (ResultSet rs = meta.getExportedKeys(null, null, "departments")) {
                while (rs.next()) exported.add(rs.getString("FKTABLE_NAME") + "." + rs.getString("FKCOLUMN_NAME"));
            }
            check("getExportedKeys", exported.contains("dept_scores.dept_code")
                && exported.contains("departments.parent_code"), exported);
            Map<String, Integer> functions = new TreeMap<>();
            try (ResultSet rs = meta.getFunctions(null, "public", "%")) {
                while (rs.next()) functions.put(rs.getString("FUNCTION_NAME"), rs.getInt("FUNCTION_TYPE"));
            }
            check("getFunctions", functions.containsKey("perf_grade") && functions.containsKey("dept_ranking")
                && !functions.containsKey("abs"), functions);
            check("getMaxColumnsInIndex", meta.getMaxColumnsInIndex() == 32, meta.getMaxColumnsInIndex());

            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT dept_code, total_score FROM dept_ranking(2023) WHERE dept_code = ?")) {
                ps.setString(1, "101");
                try (ResultSet rs = ps.executeQuery()) {
                    check("PreparedStatement row", rs.next(), "no row");
                    BigDecimal score = rs.getBigDecimal(2);
                    check("PreparedStatement BigDecimal", score.compareTo(expected) == 0,
                        score + " != " + expected);
                }
            }
            // Run the same prepared statement often enough for the driver to switch to
            // a named server-side statement (prepareThreshold, 5 by default).
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT count(*) FROM dept_ranking(2023) WHERE rank >= ?")) {
                for (int i = 0; i < 7; i++) {
                    ps.setInt(1, 1);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        check("PreparedStatement run " + (i + 1), rs.getInt(1) == ranked, rs.getInt(1));
                    }
                }
            }
            // A table function's year as a bound parameter, past the prepare threshold
            // too (the driver then uses a named server-side statement, binary results).
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT count(*), min(total_score) FROM dept_ranking(?)")) {
                for (int i = 0; i < 7; i++) {
                    ps.setInt(1, 2023);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        check("table-function parameter run " + (i + 1), rs.getInt(1) == ranked, rs.getInt(1));
                    }
                }
                ps.setLong(1, 2023L);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    check("table-function parameter as long", rs.getInt(1) == ranked, rs.getInt(1));
                }
                ps.setString(1, "2023");
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    check("table-function parameter as text", rs.getInt(1) == ranked, rs.getInt(1));
                }
            }
            try (Statement st = conn.createStatement()) {
                st.execute("DROP TABLE dept_scores");
                check("write refused", false, "DROP TABLE ran");
            } catch (SQLException e) {
                check("write refused", "42501".equals(e.getSQLState()), e.getSQLState() + " " + e.getMessage());
            }
        }
        System.out.println("all jdbc checks passed");
    }
}
