//! Criterion benches of kpidb's functions: each scalar function on arrays of 1k and 8k
//! decimal rows and on one scalar; the aggregates and the window function through SQL
//! over in-memory tables of 1k and 8k rows; each table function on the sample warehouse.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datafusion::arrow::array::{ArrayRef, BooleanArray, Decimal128Array, Int32Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};
use kpidb::functions::{scalars, FunctionOptions};
use kpidb::{Engine, Warehouse};
use tokio::runtime::Runtime;

const SIZES: [usize; 2] = [1024, 8192];

fn decimals(n: usize, offset: i128) -> ArrayRef {
    let values: Vec<i128> = (0..n as i128).map(|i| (i * 37 + offset) % 10_000).collect();
    Arc::new(
        Decimal128Array::from(values)
            .with_precision_and_scale(38, 2)
            .unwrap(),
    )
}

fn invoke(f: &ScalarUDF, args: Vec<ColumnarValue>, rows: usize) -> ColumnarValue {
    let arg_fields = args
        .iter()
        .enumerate()
        .map(|(i, a)| Arc::new(Field::new(format!("a{i}"), a.data_type(), true)))
        .collect::<Vec<_>>();
    let types: Vec<DataType> = args.iter().map(|a| a.data_type()).collect();
    let return_field = Arc::new(Field::new("out", f.return_type(&types).unwrap(), true));
    f.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: rows,
        return_field,
        config_options: Arc::new(ConfigOptions::default()),
    })
    .unwrap()
}

fn scalar_functions(c: &mut Criterion) {
    for f in scalars(FunctionOptions::default()) {
        let mut group = c.benchmark_group(f.name().to_string());
        let arity = match f.name() {
            "perf_grade" => 1,
            "completion_rate" => 3,
            "target_points" => 4,
            _ => 2,
        };
        // The third argument of completion_rate and target_points is the comparator.
        let text = |i: usize| arity > 2 && i == 2;
        for rows in SIZES {
            let args: Vec<ColumnarValue> = (0..arity)
                .map(|i| match text(i) {
                    true => ColumnarValue::Scalar(ScalarValue::from(">=")),
                    false => ColumnarValue::Array(decimals(rows, 5_000 + i as i128 * 1_000)),
                })
                .collect();
            group.throughput(Throughput::Elements(rows as u64));
            group.bench_with_input(BenchmarkId::new("array", rows), &args, |b, args| {
                b.iter(|| invoke(&f, args.clone(), rows))
            });
        }
        let scalar: Vec<ColumnarValue> = (0..arity)
            .map(|i| match text(i) {
                true => ColumnarValue::Scalar(ScalarValue::from(">=")),
                false => ColumnarValue::Scalar(ScalarValue::Decimal128(
                    Some(8_550 + i as i128 * 100),
                    38,
                    2,
                )),
            })
            .collect();
        group.bench_function("scalar", |b| b.iter(|| invoke(&f, scalar.clone(), 1)));
        group.finish();
    }
}

fn table(rows: usize) -> MemTable {
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        Field::new("dept", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("year", DataType::Int32, false),
        Field::new("score", DataType::Decimal128(38, 2), false),
        Field::new("flag", DataType::Boolean, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("d{}", i % 50)),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("i{}", i % 97)),
            )),
            Arc::new(Int32Array::from_iter_values(
                (0..rows).map(|i| 2000 + (i / 50) as i32),
            )),
            decimals(rows, 0),
            Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 3 != 0)))),
        ],
    )
    .unwrap();
    MemTable::try_new(schema, vec![vec![batch]]).unwrap()
}

fn sql_functions(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let engine = rt.block_on(async {
        Engine::open(Warehouse::open(kpidb::sample::shipped::warehouse().unwrap()).unwrap())
            .await
            .unwrap()
    });
    for rows in SIZES {
        engine
            .context()
            .register_table(format!("bench_{rows}"), Arc::new(table(rows)))
            .unwrap();
    }
    let queries = [
        (
            "lowest_k",
            "SELECT dept, lowest_k(label, score, 3) FROM {t} GROUP BY dept",
        ),
        (
            "coverage_rate",
            "SELECT dept, coverage_rate(flag) FROM {t} GROUP BY dept",
        ),
        (
            "prior_year",
            "SELECT prior_year(score, year) OVER (PARTITION BY dept ORDER BY year) FROM {t}",
        ),
    ];
    for (name, sql) in queries {
        let mut group = c.benchmark_group(name);
        for rows in SIZES {
            let sql = sql.replace("{t}", &format!("bench_{rows}"));
            group.throughput(Throughput::Elements(rows as u64));
            group.bench_with_input(BenchmarkId::new("sql", rows), &sql, |b, sql| {
                b.iter(|| rt.block_on(engine.query(sql)).unwrap())
            });
        }
        group.finish();
    }
    let mut group = c.benchmark_group("table_functions");
    for sql in [
        "SELECT * FROM dept_ranking(2023)",
        "SELECT * FROM indicator_callouts(2023, 3)",
        "SELECT * FROM dept_trend(2019, 2023)",
        "SELECT * FROM grade_distribution(2023)",
        "SELECT * FROM exante_summary(2023)",
    ] {
        let name = sql.trim_start_matches("SELECT * FROM ");
        group.bench_function(name, |b| b.iter(|| rt.block_on(engine.query(sql)).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, scalar_functions, sql_functions);
criterion_main!(benches);
