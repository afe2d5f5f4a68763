// Class names of MNIST and Fashion-MNIST, by label 0-9, as the analysis page names them. The main page
// takes every dataset's names from the server instead (run_started, GET /api/datasets, /api/samples).
// No DOM here.

const DIGITS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
// for tight spots (confusion-matrix axes); the full name goes in a title
const FASHION_SHORT = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"];

const NAMES = { mnist: DIGITS, fashion_mnist: FASHION };
const SHORT = { mnist: DIGITS, fashion_mnist: FASHION_SHORT };

/** True when a data set's classes are words, not digits. */
export const isFashion = (dataset) => dataset === "fashion_mnist";

/** The ten class names of a data set (digits for MNIST or anything unknown). */
export const classNames = (dataset) => NAMES[dataset] ?? DIGITS;

/** Short names, for axes. */
export const shortNames = (dataset) => SHORT[dataset] ?? DIGITS;

/** One class's name: 3 -> "3" on MNIST, "Dress" on Fashion-MNIST. */
export const className = (dataset, label) => classNames(dataset)[label] ?? String(label);

/** "a 7" for a digit, the bare name for clothing ("Ankle boot"), for sentences like "test image 4, a 7". */
export const aClass = (dataset, label) => (isFashion(dataset) ? className(dataset, label) : `a ${label}`);
